"""`sereno serve` against hostile requests: parameters out of range, bodies over the limit
however they are sent, clients that go away, gzip members, deep nesting, HEAD."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers

from sereno.events.body import Decoded, decode_body
from sereno.events.schema import Event
from sereno.events.times import ANY_TIME
from sereno.serve import params
from sereno.serve.params import MAX_HISTORY_LIMIT, OFF_LOOP_BYTES

from conftest import Server, event, json_lines

MiB = 1 << 20
DECODE_BODY = decode_body  # the one the server calls, before it is watched


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=9223372036854775808", "limit: input should be less than or equal to 10000"),
        ("limit=10001", "limit: input should be less than or equal to 10000"),
        ("limit=0", "limit: input should be greater than or equal to 1"),
        ("limit=-1", "limit: input should be greater than or equal to 1"),
        ("limit=ten", "limit: input should be a valid integer"),
        ("since=nan", "since: expected seconds since the epoch or an ISO 8601 time, got 'nan'"),
        ("since=1e999", "since: expected a time from -62135683200 to 253402387200 seconds"),
        ("since=yesterday", "since: expected seconds since the epoch or an ISO 8601 time"),
        ("since=2016-10-10T00:00:00", "since: '2016-10-10T00:00:00' has no time zone"),
    ],
)
def test_history_parameters_that_are_not_one_are_400(
    start_server: Callable[..., Server], query: str, reason: str
) -> None:
    answer = start_server().get(f"/alerts/history?{query}")
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(reason)
    assert "\n" not in answer.json()["error"]


def test_history_limit_bounds_are_taken_and_documented(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    assert server.get(f"/alerts/history?limit={MAX_HISTORY_LIMIT}").json() == []
    assert server.get("/alerts/history?limit=1").json() == []
    operation = server.get("/openapi.json").json()["paths"]["/alerts/history"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, MAX_HISTORY_LIMIT)
    assert sorted(operation["responses"]) == ["200", "400", "401"]  # 400, not FastAPI's 422


def peak_memory(server: Server) -> int:
    """The server process's peak resident set, in bytes (Linux)."""
    with open(f"/proc/{server.process.pid}/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    return int(peak.split()[1]) * 1024


def blank_chunks(total: int, size: int = 64 << 10) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def test_a_chunked_body_over_the_limit_is_refused_as_it_comes(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--max-body", str(MiB))
    before = peak_memory(server)
    sent = 256 * MiB
    # a generator is sent with Transfer-Encoding: chunked, with no Content-Length
    answer = httpx.post(
        f"{server.url}/events",
        content=blank_chunks(sent),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json() == {"error": f"the body is over the limit of {MiB} bytes"}
    assert peak_memory(server) - before < sent // 4
    assert 'sereno_events_rejected_total{reason="too_large"} 1.0' in server.get("/metrics").text


def test_a_body_within_the_limit_is_taken_chunked(start_server: Callable[..., Server]) -> None:
    server = start_server()
    records = [json_lines(event(server=f"s{n}")) for n in range(3)]
    answer = httpx.post(
        f"{server.url}/events",
        content=iter(records),
        headers={"content-type": "application/x-ndjson"},
    )
    assert (answer.status_code, answer.json()["accepted"]) == (202, 3)


def decoded_where(
    monkeypatch: pytest.MonkeyPatch, body: bytes, **headers: str
) -> tuple[bool, Decoded]:
    """Whether the server decodes `body` on its event loop, and what it made of it."""
    on_loop: list[bool] = []

    def watched(*arguments: Any) -> Decoded:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            on_loop.append(False)  # a worker thread: no loop runs there
        else:
            on_loop.append(True)
        return DECODE_BODY(*arguments)

    monkeypatch.setattr(params, "decode_body", watched)
    decoded = asyncio.run(
        params.decode(
            body,
            Headers({"content-type": "application/x-ndjson", **headers}),
            Event,
            64 * MiB,
            ANY_TIME,
        )
    )
    return on_loop == [True], decoded


def test_large_and_compressed_bodies_are_decoded_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = json_lines(event())
    large = one * (OFF_LOOP_BYTES // len(one) + 1)
    small = one * 2
    on_loop, decoded = decoded_where(monkeypatch, small)
    assert (on_loop, len(decoded.events)) == (True, 2)
    on_loop, decoded = decoded_where(monkeypatch, large)
    assert (on_loop, len(decoded.events)) == (False, large.count(b"\n"))
    on_loop, decoded = decoded_where(
        monkeypatch, gzip.compress(small), **{"content-encoding": "gzip"}
    )
    assert (on_loop, len(decoded.events)) == (False, 2)


def test_a_client_gone_mid_body_is_counted_without_a_traceback(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    port = int(server.url.rsplit(":", 1)[1])
    heads = [
        b"Content-Length: 100000\r\n\r\n[" + b" " * 100,
        b"Transfer-Encoding: chunked\r\n\r\n100\r\n[" + b" " * 10,
    ]
    for head in heads:
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(
                b"POST /events HTTP/1.1\r\nHost: sereno\r\nContent-Type: application/json\r\n"
                + head
            )
    gone = 'sereno_events_rejected_total{reason="disconnected"} 2.0'
    assert gone in server.metric_until(gone)
    said = server.stop()
    assert "Traceback" not in said
    assert "Exception" not in said


def test_gzip_members_are_each_decompressed_and_garbage_after_them_refused(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    first, second = json_lines(event()), json_lines(event(server="b"))
    members = gzip.compress(first) + gzip.compress(second)
    lines, gzipped = "application/x-ndjson", {"content-encoding": "gzip"}
    taken = server.post(members, lines, **gzipped)
    assert (taken.status_code, taken.json()["accepted"]) == (202, 2)
    for trailer in (b"garbage", b"\0\0\0\0", gzip.compress(second)[:12]):
        refused = server.post(gzip.compress(first) + trailer, lines, **gzipped)
        assert refused.status_code == 400, trailer
        assert refused.json()["error"].startswith("not valid gzip: "), trailer


def test_gzip_over_the_limit_once_decompressed_is_refused(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("--max-body", str(MiB))
    bomb = gzip.compress(b" " * (MiB // 2)) * 3  # 3 members, each half the limit
    refused = server.post(bomb, **{"content-encoding": "gzip"})
    assert (refused.status_code, len(bomb) < MiB // 100) == (413, True)


def test_json_nested_too_deeply_is_400(start_server: Callable[..., Server]) -> None:
    server = start_server()
    deep_array = b"[" * 1000 + b"]" * 1000
    deep_object = b'{"a":' * 1000 + b"1" + b"}" * 1000
    answers = [server.post(deep_array), server.post(b"[" + deep_object + b"]")]
    assert [(a.status_code, a.json()) for a in answers] == [
        (400, {"error": "not valid JSON: nested too deeply; the rest of the input was skipped"})
    ] * 2
    # in JSON Lines, one line is one record: rejected on its own, the others kept
    lines = json_lines(event()) + deep_object + b"\n"
    answer = server.post(lines, "application/x-ndjson")
    assert (answer.status_code, answer.json()) == (
        202,
        {
            "accepted": 1,
            "rejected": 1,
            "errors": [{"index": 1, "field": None, "reason": "not valid JSON: nested too deeply"}],
        },
    )


def test_head_is_answered_where_get_is(start_server: Callable[..., Server]) -> None:
    server = start_server()
    for path in ("/healthz", "/readyz", "/alerts", "/alerts/history", "/metrics", "/"):
        answer = httpx.head(f"{server.url}{path}")
        assert (answer.status_code, answer.content) == (200, b""), path
    assert httpx.head(f"{server.url}/alerts/history?limit=0").status_code == 400
    document = json.dumps(server.get("/openapi.json").json()["paths"])
    assert '"head"' not in document


def test_events_the_service_cannot_keep_are_rejected_and_the_evaluator_runs_on(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    body = json_lines(
        event(timestamp=1e300),
        event(value=2**70),
        event(timestamp=-1e20),
        event(timestamp=1476057600 + 200),
    )
    answer = server.post(body, "application/x-ndjson")
    assert answer.status_code == 202
    taken = answer.json()
    assert (taken["accepted"], taken["rejected"]) == (1, 3)
    expected = [
        (0, "timestamp", "1e+300 is 3.2e+292 years ahead of the clock"),
        (1, "value", "expected a finite number, got a number out of range"),
        (2, "timestamp", "-1e+20 is before 1970: expected Unix seconds"),
    ]
    errors = taken["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(i, f) for i, f, _ in expected]
    assert all(e["reason"].startswith(r) for e, (_, _, r) in zip(errors, expected, strict=True))
    server.post_lines(event(timestamp=1476057600 + 400))  # closes the minutes before it
    evaluated = "sereno_events_evaluated_total 2.0"  # the one kept, and the one after it
    assert evaluated in server.metric_until(evaluated)
    assert server.get("/readyz").status_code == 200
