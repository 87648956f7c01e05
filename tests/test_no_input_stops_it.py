"""No input stops or silences the service: a fleet's events pushed while hostile bodies and
query strings come in beside them, a `kill -9` half way, and a restart; `/healthz` answers
throughout, nothing hostile is answered 5xx, and the alerts are exactly those of
`sereno FILE` on the good events: none lost, none told twice."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from conftest import Server, json_lines, raw_event, run_sereno, sample_events

MINUTES_APART = 600  # copies of the sample, each ten minutes after the one before
COPIES = 6
BATCH = 20
MAX_BODY = 1 << 20


def fleet_events() -> list[dict[str, Any]]:
    """The sample, again and again, in time order; then every series once more at a low
    value, twice, so that every minute with data is evaluated and every alert is resolved."""
    sample = sample_events()
    events = [
        {**e, "timestamp": e["timestamp"] + copy * MINUTES_APART}
        for copy in range(COPIES)
        for e in sample
    ]
    end = events[-1]["timestamp"]
    series = {(e["server"], e["service"], e["component"]): e["active"] for e in sample}
    for later in (MINUTES_APART, MINUTES_APART + 120):
        events += [
            {
                "server": server,
                "service": service,
                "component": component,
                "value": 0.1,
                "timestamp": end + later,
                "active": active,
            }
            for (server, service, component), active in series.items()
        ]
    return events


def hostile_requests(url: str) -> Iterator[tuple[str, Callable[[httpx.Client], httpx.Response]]]:
    """Each hostile request that once stopped, silenced or crashed the service."""
    json_type = {"content-type": "application/json"}

    def post(body: bytes, **headers: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: client.post(
            f"{url}/events", content=body, headers={**json_type, **headers}
        )

    for value, timestamp in (
        ("1", "1.7976931348623157e308"),
        ("1", "1e20"),
        ("1", "-1e20"),
        ("1", "2e9"),
        ("1", "1476057600000"),
        ("18446744073709551616", "1476057600"),
    ):
        yield f"value {value} at {timestamp}", post(raw_event(value, timestamp).encode())
    yield "nested 1,000 deep", post(b"[" * 1000 + b"]" * 1000)
    yield (
        "gzip then garbage",
        post(gzip.compress(b"[]") + b"garbage", **{"content-encoding": "gzip"}),
    )
    yield "not UTF-8", post(b'{"server":"\xff\xfe"}')
    yield (
        "a limit beyond 64 bits",
        lambda client: client.get(f"{url}/alerts/history", params={"limit": "9223372036854775808"}),
    )

    def chunked_over_the_limit(client: httpx.Client) -> httpx.Response:
        chunks = (b" " * 65536 for _ in range(3 * MAX_BODY // 65536))
        return client.post(f"{url}/events", content=chunks, headers=json_type)

    yield "chunked, over --max-body", chunked_over_the_limit


class Watch(threading.Thread):
    """Asks for `/healthz` again and again until stopped; keeps what went wrong."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.problems: list[str] = []
        self.answers = 0

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.wait(0.02):
                try:
                    status = client.get(f"{self.url}/healthz").status_code
                except httpx.HTTPError as error:
                    self.problems.append(f"/healthz: {error!r}")
                    continue
                self.answers += 1
                if status != 200:
                    self.problems.append(f"/healthz answered {status}")


class Hostile(threading.Thread):
    """Sends every hostile request, round after round, until stopped; keeps any 5xx."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.requests = list(hostile_requests(url))
        self.stopping = threading.Event()
        self.problems: list[str] = []
        self.sent = 0

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                for name, request in self.requests:
                    status = request(client).status_code
                    self.sent += 1
                    if status >= 500:
                        self.problems.append(f"{name}: {status}")


def push_under_fire(server: Server, batches: list[list[dict[str, Any]]]) -> None:
    watch, hostile = Watch(server.url), Hostile(server.url)
    watch.start()
    hostile.start()
    try:
        for batch in batches:
            answer = server.post(json_lines(*batch), "application/x-ndjson")
            assert answer.status_code == 202, answer.text
            assert answer.json()["rejected"] == 0, answer.text
    finally:
        hostile.stopping.set()
        hostile.join()
        watch.stopping.set()
        watch.join()
    assert hostile.problems == []
    assert hostile.sent >= len(hostile.requests)
    assert watch.problems == []
    assert watch.answers > 0


def final_records(lines: list[str]) -> dict[tuple[str, str, str | None, int], dict[str, Any]]:
    """Each episode's latest record, by (rule, service, server, started), without what only
    the alerts log says of it (the change and its notice)."""
    records: list[dict[str, Any]] = [json.loads(line) for line in lines if line.strip()]
    for record in records:
        record.pop("change", None)
        record.pop("notice", None)
    return {(r["rule"], r["service"], r["server"], r["started"]): r for r in records}


def test_hostile_input_neither_stops_nor_silences_the_service_and_kill_9_loses_nothing(
    start_server: Callable[..., Server], write_file: Callable[[str, bytes | str], Path]
) -> None:
    events = fleet_events()
    expected = run_sereno(
        write_file("fleet.jsonl", json_lines(*events)), "--episodes", "--format", "json"
    )
    assert expected.returncode == 0, expected.stderr
    batches = [events[start : start + BATCH] for start in range(0, len(events), BATCH)]
    half = len(batches) // 2

    server = start_server("--max-body", str(MAX_BODY))
    push_under_fire(server, batches[:half])
    server.process.kill()
    server.process.wait()
    again = start_server("--max-body", str(MAX_BODY))
    push_under_fire(again, batches[half:])

    expected_records = final_records(expected.stdout.splitlines())
    assert len(expected_records) > 10
    resolved = sum(1 for r in expected_records.values() if r["state"] == "resolved")
    assert resolved == len(expected_records)

    def all_told() -> bool:
        told = final_records(again.log.read_text().splitlines())
        return sum(1 for r in told.values() if r["state"] == "resolved") >= resolved

    again.alerts_until(lambda alerts: all_told())
    lines = again.log.read_text().splitlines()
    assert final_records(lines) == expected_records
    # each episode told once as it fired and once as it was resolved: none twice
    changes = [
        (r["rule"], r["service"], r["server"], r["started"], r["state"])
        for r in map(json.loads, lines)
    ]
    assert sorted(changes) == sorted(set(changes))
    assert again.get("/readyz").status_code == 200
