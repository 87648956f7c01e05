"""Acknowledgements against the real service, with `sereno ack`: an acknowledged alert's
reminders stop (and go on once the ack is taken back), the ack outlives a kill -9, and the
history shows who had an alert after it ended. Minute m's samples come at its second 35,
which also closes minute m - 1 (allowed lateness 30 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from peers import HttpReceiver

from conftest import Server, disk_in_minute, run_sereno

CONFIG = """
receivers:
  - {{name: ops, type: webhook, url: "{url}", repeat_interval: 1m}}
"""


def told(receiver: HttpReceiver) -> list[tuple[str, str]]:
    """(server, change) of each notice the receiver took."""
    return [
        (body["commonLabels"]["server"], body["alerts"][0]["annotations"]["change"])
        for body in receiver.accepted()
    ]


def test_an_acknowledged_alert_is_not_reminded_of_and_the_ack_is_kept(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    config = write_file("sereno.yaml", CONFIG.format(url=http_receiver.url))
    server = start_server("--config", str(config))
    server.post_lines(disk_in_minute("inbox_01", 0.95, 0), disk_in_minute("inbox_01", 0.95, 1))
    http_receiver.wait_for(lambda r: len(r.accepted()) == 1)
    [alert] = server.alerts_until(bool)
    acked = run_sereno("ack", alert["id"], "--author", "ana", "--url", server.url)
    assert acked.stderr == f"sereno: alert {alert['id']} acknowledged by ana at MEDIUM\n"
    # minutes 1 to 3 are evaluated: inbox_01 would be reminded of in each; pdf_01 fires in 3
    server.post_lines(
        disk_in_minute("inbox_01", 0.95, 2),
        disk_in_minute("inbox_01", 0.95, 3),
        disk_in_minute("pdf_01", 0.95, 3),
        disk_in_minute("inbox_01", 0.95, 4),
    )
    http_receiver.wait_for(lambda r: len(r.accepted()) == 2)
    server.metric_until('sereno_notifications_queued{receiver="ops"} 0.0')
    assert told(http_receiver) == [("inbox_01", "fired"), ("pdf_01", "fired")]

    server.process.kill()
    server.process.wait()
    again = start_server("--config", str(config))
    shown = {a["server"]: a["ack"] for a in again.get("/alerts").json()}
    assert shown["inbox_01"]["by"] == "ana" and shown["pdf_01"] is None
    assert "acknowledged by ana" in again.get("/").text
    pdf_id = next(a["id"] for a in again.get("/alerts").json() if a["server"] == "pdf_01")
    assert run_sereno("ack", pdf_id, "--author", "bob", "--url", again.url).returncode == 0
    undone = run_sereno("ack", "--undo", alert["id"], "--url", again.url)
    assert undone.stderr == f"sereno: alert {alert['id']} is no longer acknowledged by ana\n"
    # minutes 4 and 5 evaluated: inbox_01 is reminded of again in each; pdf_01 (acknowledged)
    # is not, and resolves in minute 5, which the history shows with who had it
    again.post_lines(disk_in_minute("inbox_01", 0.95, 5), disk_in_minute("pdf_01", 0.5, 5))
    again.post_lines(disk_in_minute("inbox_01", 0.95, 6))
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 5)
    again.metric_until('sereno_notifications_queued{receiver="ops"} 0.0')
    assert told(http_receiver)[2:] == [
        ("inbox_01", "repeat"),
        ("pdf_01", "resolved"),
        ("inbox_01", "repeat"),
    ]
    history = again.get("/alerts/history").json()
    ack = next(r["ack"] for r in history if r["server"] == "pdf_01")
    assert (ack["by"], ack["severity"]) == ("bob", "MEDIUM")


def test_acks_are_refused_with_the_reason(start_server: Callable[..., Server]) -> None:
    server = start_server()
    url = f"{server.url}/api/alerts/nope/ack"
    assert httpx.post(url, json={"by": "ana"}).status_code == 404
    assert httpx.delete(url).json() == {"error": "alert nope is not acknowledged"}
    unknown = run_sereno("ack", "nope", "--url", server.url)
    assert unknown.returncode == 2
    assert unknown.stderr == (f"sereno: {url} answered 404: no open alert has the id 'nope'\n")


def test_a_bad_acknowledgement_of_an_open_alert_is_a_400_with_the_reason(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    server.post_lines(disk_in_minute("inbox_01", 0.95, 0))
    [alert] = server.alerts_until(bool)
    url = f"{server.url}/api/alerts/{alert['id']}/ack"
    cases: list[tuple[bytes, str]] = [
        (b"\xff\xfe", "not an acknowledgement"),
        (b'{"by": ""}', "$.by"),
        (b'{"by": "   "}', "$.by"),
        (b'{"by": "ana", "comment": "' + b"x" * 1001 + b'"}', "$.comment"),
        (b'{"by": "ana", "team": "x"}', "team"),
        (b"[1, 2]", "not an acknowledgement"),
    ]
    for body, reason in cases:
        answer = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (body, answer.text)
        assert reason in answer.json()["error"], (body, answer.text)
    too_large = httpx.post(url, content=b'{"by": "' + b"a" * 20_000 + b'"}')
    assert too_large.status_code == 413
    assert server.get("/alerts").json()[0]["ack"] is None  # none of them was taken
