"""The receivers over HTTP against the real service and a real webhook: what each one's
delivery has done, the log of what became of each notification of an alert, and a test
notification sent from the API. Minute m's samples come at its second 35, which also
closes minute m - 1 (allowed lateness 30 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from peers import HttpReceiver

from sereno.state.store import read_deliveries

from conftest import Server, disk_in_minute

CONFIG = """
receivers:
  - {{name: ops, type: webhook, url: "{url}", retry_backoff: 50ms}}
"""


def test_a_receivers_counts_and_each_attempt_of_an_alert_are_shown(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    config = write_file("sereno.yaml", CONFIG.format(url=http_receiver.url))
    server = start_server("--config", str(config))
    [before] = server.get("/api/receivers").json()
    assert before == {
        "name": "ops",
        "type": "webhook",
        "queued": 0,
        "sent": 0,
        "failed": 0,
        "retried": 0,
        "dropped": 0,
        "last_sent_at": None,
        "last_error": None,
        "last_error_at": None,
    }
    http_receiver.answer(503)  # the first attempt fails, the retry is taken
    server.post_lines(disk_in_minute("inbox_01", 0.95, 0), disk_in_minute("inbox_01", 0.95, 1))
    http_receiver.wait_for(lambda r: len(r.requests) == 1)
    http_receiver.answer(200)
    http_receiver.wait_for(lambda r: len(r.accepted()) == 1)
    server.metric_until('sereno_notifications_queued{receiver="ops"} 0.0')
    [alert] = server.alerts_until(bool)

    [after] = server.get("/api/receivers").json()
    assert (after["sent"], after["failed"], after["retried"], after["queued"]) == (1, 1, 1, 0)
    refused = f"{http_receiver.url} answered 503 Service Unavailable: status 503"
    assert after["last_error"] == refused
    assert after["last_sent_at"] >= after["last_error_at"] > 0
    attempts = read_deliveries(tmp_path / "sereno.db", alert["id"])
    assert [(a.receiver, a.outcome, a.change, a.detail) for a in attempts] == [
        ("ops", "failed", "fired", refused),
        ("ops", "sent", "fired", ""),
    ]
    assert {a.title for a in attempts} == {"[FIRING] MEDIUM: Disk consumption exceeds 90%"}
    shown = server.get(f"/api/alerts/{alert['id']}").json()["notifications"]
    assert [(n["receiver"], n["outcome"], n["change"], n["at"]) for n in shown] == [
        (a.receiver, a.outcome, a.change, a.at) for a in attempts
    ]


def test_a_test_notification_is_sent_to_the_receiver_named(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    config = write_file("sereno.yaml", CONFIG.format(url=http_receiver.url))
    server = start_server("--config", str(config))
    sent = httpx_post(server, "/api/receivers/ops/test")
    assert sent == (200, {"receiver": "ops", "ok": True, "error": None})
    [body] = http_receiver.accepted()
    assert body["alerts"][0]["annotations"]["summary"].startswith(
        "TEST: this is a test notification from Sereno's page;"
    )
    http_receiver.answer(500)
    refused = httpx_post(server, "/api/receivers/ops/test")
    error = f"{http_receiver.url} answered 500 Internal Server Error: status 500"
    assert refused == (200, {"receiver": "ops", "ok": False, "error": error})
    assert httpx_post(server, "/api/receivers/nobody/test") == (
        404,
        {"error": "no receiver is named 'nobody'"},
    )
    assert httpx_post(server, "/api/receivers/ops/test", method="GET")[0] == 405


def httpx_post(server: Server, path: str, method: str = "POST") -> tuple[int, Any]:
    answer = httpx.request(method, f"{server.url}{path}", timeout=10)
    return answer.status_code, answer.json()
