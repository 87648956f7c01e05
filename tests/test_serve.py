"""`sereno serve` and `sereno push`, end to end: the real server on a free 127.0.0.1 port."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import SAMPLE, event, json_lines, run_sereno, sereno_executable

T0 = 1476057600


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def post(
        self, body: bytes, content_type: str = "application/json", **headers: str
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}/events", content=body, headers={"content-type": content_type, **headers}
        )

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=headers)

    def alerts_until(self, done: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while True:
            alerts: list[dict[str, Any]] = self.get("/alerts").json()
            if done(alerts) or time.monotonic() > deadline:
                return alerts
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        port = free_port()
        log = tmp_path / f"alerts-{port}.log"
        command = [sereno_executable(), "serve", "--listen", f"127.0.0.1:{port}"]
        process = subprocess.Popen(
            [*command, "--alerts-log", str(log), *args], stderr=subprocess.PIPE
        )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if server.get("/readyz").status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail("the server did not start")

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()


def test_each_body_format_is_taken(start_server: Callable[..., Server]) -> None:
    server = start_server()
    one = json.dumps(event()).encode()
    array = SAMPLE.read_bytes()
    lines = json_lines(event(), event(server="b"))
    answers = [
        server.post(one),
        server.post(array),
        server.post(lines, "application/x-ndjson"),
        server.post(gzip.compress(array), **{"content-encoding": "gzip"}),
    ]
    assert [a.status_code for a in answers] == [202] * 4
    assert [a.json()["accepted"] for a in answers] == [1, 71, 2, 71]


def test_bad_records_are_rejected_one_by_one_and_good_ones_kept(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    body = json_lines(event(), event(value="high"), "not json", event(server="b"))
    answer = server.post(body, "application/x-ndjson")
    assert answer.status_code == 202
    assert answer.json() == {
        "accepted": 2,
        "rejected": 2,
        "errors": [
            {"index": 1, "field": "value", "reason": "expected a finite number, got a string"},
            {
                "index": 2,
                "field": None,
                "reason": "not valid JSON: invalid character at byte 5 of the record",
            },
        ],
    }


def test_bodies_that_cannot_be_taken(start_server: Callable[..., Server]) -> None:
    server = start_server("--max-body", "1000")
    cases = [
        (server.post(b"[1, 2"), 400),
        (server.post(b'"text"'), 400),
        (server.post(b"x", "text/plain"), 415),
        (server.post(b"[]", **{"content-encoding": "br"}), 415),
        (server.post(b"not gzip", **{"content-encoding": "gzip"}), 400),
        (server.post(b"[" + b" " * 2000 + b"]"), 413),
        (
            server.post(gzip.compress(b"[" + b" " * 2000 + b"]"), **{"content-encoding": "gzip"}),
            413,
        ),
    ]
    assert [(answer.status_code, expected) for answer, expected in cases] == [
        (expected, expected) for _, expected in cases
    ]
    assert all("error" in answer.json() for answer, _ in cases)


def test_with_a_token_file_every_request_needs_a_token(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret\nother\n")
    server = start_server("--token-file", str(tokens))
    assert server.post(b"[]").status_code == 401
    assert server.post(b"[]", authorization="Bearer wrong").status_code == 401
    assert server.post(b"[]", authorization="Bearer other").status_code == 202
    assert server.get("/alerts").status_code == 401
    assert server.get("/healthz").status_code == 200


def test_pushed_alerts_appear_and_resolve_over_the_api(
    start_server: Callable[..., Server], write_file: Callable[[str, bytes], Path]
) -> None:
    server = start_server()
    pushed = run_sereno("push", SAMPLE, "--url", f"{server.url}/events", "--batch", "10")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed 71 events in 8 requests: 71 accepted, 0 rejected" in pushed.stderr
    # minutes up to T0+180 are evaluated (the watermark is T0+212): reporting_pdf02's disk
    # fired at T0+120 and still fires; InboxService's load was resolved at T0+180
    alerts = server.alerts_until(lambda alerts: len(alerts) > 0)
    assert [(a["rule"], a["server"], a["state"], a["since"], a["value"]) for a in alerts] == [
        ("Disk consumption exceeds 90%", "reporting_pdf02", "firing", T0 + 120, 0.91)
    ]
    later = json_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))
    assert server.post(later, "application/x-ndjson").status_code == 202
    # now T0+240 is evaluated: reporting_pdf02's latest disk sample is 0.89 (resolved), and
    # inbox_production02's disk and FacebookRealtime's load fire
    alerts = server.alerts_until(lambda alerts: len(alerts) == 2)
    assert sorted((a["server"] or a["service"], a["state"], a["since"]) for a in alerts) == [
        ("FacebookRealtime", "firing", T0 + 240),
        ("inbox_production02", "firing", T0 + 240),
    ]
    changes = [json.loads(line) for line in server.log.read_text().splitlines()]
    states = [(c["rule"][:4], c["service"], c["state"]) for c in changes]
    assert ("5 mi", "InboxService", "resolved") in states
    assert ("Disk", "InboxService", "firing") in states  # inbox_production02 at T0+240


def test_metrics_count_what_came_in(start_server: Callable[..., Server]) -> None:
    server = start_server()
    server.post(SAMPLE.read_bytes())
    server.post(b"x", "text/plain")
    server.alerts_until(lambda alerts: len(alerts) > 0)
    page = server.get("/metrics").text
    assert "sereno_events_accepted_total 71.0" in page
    assert 'sereno_events_rejected_total{reason="unsupported_type"} 1.0' in page
    assert "sereno_windows_evaluated_total 4.0" in page
    assert 'sereno_alerts{rule="Disk consumption exceeds 90%",state="firing"} 1.0' in page


def test_sigterm_stops_the_server_cleanly(start_server: Callable[..., Server]) -> None:
    server = start_server()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    assert server.process.stderr is not None
    assert b"sereno: stopped" in server.process.stderr.read()


def test_bad_serve_arguments_are_usage_errors(tmp_path: Path) -> None:
    result = run_sereno("serve", "--listen", "nowhere")
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr
    empty = tmp_path / "tokens"
    empty.write_text("\n")
    result = run_sereno("serve", "--token-file", str(empty))
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"sereno: the token file {empty} holds no token",
    )


def test_push_to_nowhere_says_so() -> None:
    result = run_sereno("push", SAMPLE, "--url", f"http://127.0.0.1:{free_port()}/events")
    assert result.returncode == 2
    assert result.stderr.startswith("sereno: cannot reach http://127.0.0.1:")
    assert "Traceback" not in result.stderr
