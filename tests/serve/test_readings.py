"""What the page reads, end to end: the real service on a free 127.0.0.1 port, fed events,
and its status, rules, fleet and one alert's answers, worked out by hand."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Server, event

T0 = 1476057600
DISK_RULE = "Disk consumption exceeds 90%"
LOAD_RULE = "5 min load average exceeds 4.0"


def load(server: str, value: float, timestamp: float, active: bool = True) -> dict[str, Any]:
    return event(server=server, value=value, timestamp=timestamp, active=active)


def disk(value: float, timestamp: float, server: str = "a") -> dict[str, Any]:
    return event(server=server, component="DiskUsedPercentage", value=value, timestamp=timestamp)


def answer_until(server: Server, path: str, done: Callable[[Any], bool], **headers: str) -> Any:
    """The JSON answer of `path`, once `done` says it is the one awaited (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        answer = server.get(path, **headers)
        assert answer.status_code == 200, answer.text
        if done(answer.json()) or time.monotonic() > deadline:
            return answer.json()
        time.sleep(0.05)


def server_post(server: Server, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body)


def evaluated_before(moment: int) -> Callable[[Any], bool]:
    return lambda fleet: fleet["evaluated_before"] == moment


def test_the_status_and_the_rules(start_server: Callable[..., Server]) -> None:
    server = start_server()
    assert server.get("/api/status").json() == {
        "version": "0.1.0",
        "source": "<packaged rules.yaml>",
        "rules": 2,
        "evaluated_before": None,
        "tokens_required": False,
        "counts": {
            "events_evaluated": 0,
            "late_events": 0,
            "ahead_events": 0,
            "evaluation_errors": 0,
            "windows_evaluated": 0,
            "condition_errors": 0,
        },
    }
    rules = server.get("/api/rules").json()
    assert rules["severities"] == [  # rich's standard colours, in hex
        {"name": "LOW", "description": "Worth a look when convenient", "color": "#008080"},
        {"name": "MEDIUM", "description": "It's getting worse", "color": "#808000"},
        {"name": "HIGH", "description": "It's pretty bad", "color": "#800080"},
        {"name": "CRITICAL", "description": "Act now", "color": "#800000"},
    ]
    assert [{k: v for k, v in r.items() if k != "description"} for r in rules["rules"]] == [
        {
            "name": DISK_RULE,
            "kind": "per-server",
            "severities": ["MEDIUM"],
            "components": ["DiskUsedPercentage"],
            "condition": 'component == "DiskUsedPercentage" and value > 0.9 and active',
        },
        {
            "name": LOAD_RULE,
            "kind": "majority",
            "severities": ["HIGH"],
            "components": ["Load5mAvg"],
            "condition": 'component == "Load5mAvg" and value > 4.0 and active',
        },
    ]
    assert rules["rules"][0]["description"].startswith("Send an alert when any server's")


def test_a_majority_of_three_servers_is_shown_in_the_fleet_and_the_alert(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    server.post_lines(load("a", 5.0, T0 + 10), load("b", 6.0, T0 + 20), load("c", 1.0, T0 + 30))
    server.post_lines(load("a", 1.0, T0 + 95))  # closes T0
    fleet = answer_until(server, "/api/fleet", evaluated_before(T0 + 60))
    assert fleet == {
        "evaluated_before": T0 + 60,
        "quiet_after": 120,
        "services": [
            {
                "service": "InboxService",
                "servers": [
                    {
                        "server": name,
                        "last_report": at,
                        "active": True,
                        "quiet": False,
                        "components": [
                            {"component": "Load5mAvg", "value": value, "at": at, "matched_by": by}
                        ],
                    }
                    for name, value, at, by in (
                        ("a", 5.0, T0 + 10, [LOAD_RULE]),
                        ("b", 6.0, T0 + 20, [LOAD_RULE]),
                        ("c", 1.0, T0 + 30, []),
                    )
                ],
            }
        ],
    }
    [alert] = server.alerts_until(bool)
    assert (alert["matched_servers"], alert["unmatched_servers"]) == (["a", "b"], ["c"])
    assert (alert["active_servers"], alert["value"], alert["state"]) == (3, 6.0, "firing")
    assert server.get("/api/fleet?service=Other").json()["services"] == []
    assert server.get("/api/fleet?service=InboxService").json() == fleet


def test_a_server_that_sends_nothing_for_over_2_minutes_of_event_time_is_quiet(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    server.post_lines(*(load(name, 1.0, T0 + 35) for name in "abc"))
    for minute in (1, 2, 3):  # a and b go on; each push closes the minute before
        at = T0 + 60 * minute + 35
        server.post_lines(load("a", 1.0, at), load("b", 1.0, at, active=False))
        fleet = answer_until(server, "/api/fleet", evaluated_before(T0 + 60 * minute))
        [inbox] = fleet["services"]
        shown = [(s["server"], s["last_report"], s["active"], s["quiet"]) for s in inbox["servers"]]
        # c's report at T0 + 35 is 25 s, 85 s, then 145 s before what is evaluated
        assert shown == [
            ("a", T0 + 60 * minute - 25, True, False),
            ("b", T0 + 60 * minute - 25, minute == 1, False),
            ("c", T0 + 35, True, minute == 3),
        ]


def test_later_quiet_with_quiet_after(start_server: Callable[..., Server]) -> None:
    server = start_server("--quiet-after", "2m30s")
    server.post_lines(load("a", 1.0, T0 + 35), load("c", 1.0, T0 + 35))
    for minute in (1, 2, 3):
        server.post_lines(load("a", 1.0, T0 + 60 * minute + 35))
    fleet = answer_until(server, "/api/fleet", evaluated_before(T0 + 180))
    assert fleet["quiet_after"] == 150
    assert [s["quiet"] for s in fleet["services"][0]["servers"]] == [False, False]  # c: 145 s


def test_an_alerts_minutes_ack_and_silences_while_it_fires_and_once_it_has_ended(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    server.post_lines(disk(0.95, T0 + 10))
    server.post_lines(disk(0.97, T0 + 95))  # closes T0
    [alert] = server.alerts_until(lambda alerts: bool(alerts) and alerts[0]["value"] == 0.97)
    alert_id = alert["id"]
    for matcher in ("server=a", "server=b"):
        silence = {"matchers": [matcher], "duration": "1h", "created_by": "t", "comment": "c"}
        assert server_post(server, "/api/silences", silence).status_code == 201
    acked = server_post(server, f"/api/alerts/{alert_id}/ack", {"by": "alice"})
    assert acked.status_code == 200
    detail = server.get(f"/api/alerts/{alert_id}").json()
    assert (detail["alert"]["id"], detail["alert"]["state"]) == (alert_id, "firing")
    assert detail["alert"]["ack"]["by"] == "alice"
    assert (detail["episode"]["state"], detail["episode"]["started"]) == ("firing", T0)
    assert detail["minutes"] == [
        {"minute": T0, "value": 0.95, "matched": True, "severity": "MEDIUM", "state": "firing"}
    ]
    assert detail["notifications"] == []
    assert (detail["ack"]["alert_id"], detail["ack"]["by"]) == (alert_id, "alice")
    assert [(s["matchers"], s["state"]) for s in detail["silences"]] == [(['server="a"'], "active")]
    server.post_lines(disk(0.3, T0 + 155))  # closes T0 + 60
    server.post_lines(disk(0.3, T0 + 215))  # closes T0 + 120: resolved
    server.alerts_until(lambda alerts: not alerts)
    ended = server.get(f"/api/alerts/{alert_id}").json()
    assert ended["alert"] is None
    episode = ended["episode"]
    assert (episode["state"], episode["ended"], episode["id"]) == ("resolved", T0 + 120, alert_id)
    assert ended["minutes"] == [
        {"minute": T0, "value": 0.95, "matched": True, "severity": "MEDIUM", "state": "firing"},
        {
            "minute": T0 + 60,
            "value": 0.97,
            "matched": True,
            "severity": "MEDIUM",
            "state": "firing",
        },
        {
            "minute": T0 + 120,
            "value": 0.3,
            "matched": False,
            "severity": "MEDIUM",
            "state": "resolved",
        },
    ]
    assert ended["ack"]["by"] == "alice"  # kept for the history
    assert len(ended["silences"]) == 1


def test_an_id_no_alert_has_is_a_404(start_server: Callable[..., Server]) -> None:
    answer = start_server().get("/api/alerts/0123456789")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "no open alert nor episode of the history has the id 0123456789"
    }


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/api/alerts/xyz", "alert_id: string should match pattern '^[0-9a-f]{10}$', got 'xyz'"),
        (
            "/api/alerts/0123456789a",
            "alert_id: string should match pattern '^[0-9a-f]{10}$', got '0123456789a'",
        ),
        (
            "/api/alerts/ABCDEF0123",
            "alert_id: string should match pattern '^[0-9a-f]{10}$', got 'ABCDEF0123'",
        ),
        (
            "/api/alerts/%27%3B%20DROP",
            "alert_id: string should match pattern '^[0-9a-f]{10}$', got \"'; DROP\"",
        ),
        (
            "/alerts/history?until=yesterday",
            "until: expected seconds since the epoch or an ISO 8601 time, got 'yesterday'",
        ),
        (
            "/alerts/history?until=2016-10-10T00:00:00",
            "until: '2016-10-10T00:00:00' has no time zone (add Z for UTC)",
        ),
        (
            "/alerts/history?until=1e300",
            "until: expected a time from -62135683200 to 253402387200 seconds, got '1e300'",
        ),
        (
            f"/alerts/history?service={'s' * 1001}",
            f"service: string should have at most 1000 characters, got '{'s' * 76}...",
        ),
        (
            f"/alerts/history?severity={'s' * 1001}",
            f"severity: string should have at most 1000 characters, got '{'s' * 76}...",
        ),
        (
            f"/api/fleet?service={'s' * 1001}",
            f"service: string should have at most 1000 characters, got '{'s' * 76}...",
        ),
    ],
)
def test_bad_ids_and_parameters_are_400s_with_the_reason(
    start_server: Callable[..., Server], path: str, problem: str
) -> None:
    answer = start_server().get(path)
    assert (answer.status_code, answer.json()) == (400, {"error": problem})


def test_the_history_by_start_service_and_severity(start_server: Callable[..., Server]) -> None:
    server = start_server()
    server.post_lines(disk(0.95, T0 + 10), disk(0.5, T0 + 10, server="b"))
    server.post_lines(disk(0.97, T0 + 95, server="b"))  # closes T0; b fires at T0 + 60
    server.alerts_until(lambda alerts: len(alerts) == 2)

    def servers(query: str) -> list[str]:
        answer = server.get(f"/alerts/history?{query}")
        assert answer.status_code == 200, answer.text
        return [record["server"] for record in answer.json()]

    assert servers("") == ["b", "a"]
    assert servers(f"until={T0 + 60}") == ["a"]
    assert servers("until=2016-10-10T00:01:00Z") == ["a"]  # T0 + 60
    assert servers(f"until={T0 + 61}&service=InboxService&severity=MEDIUM") == ["b", "a"]
    assert servers("service=Other") == []
    assert servers("severity=HIGH") == []


def test_the_page_and_its_files_are_open_and_the_api_needs_a_token(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret\n")
    server = start_server("--token-file", str(tokens))
    page = server.get("/")
    assert page.status_code == 200
    assert "token is needed" in page.text
    for path in ("/static/app.js", "/favicon.ico"):
        assert server.get(path).status_code != 401, path  # answered by the page, if it has it
    for path in ("/api/fleet", "/api/status", "/api/rules", "/api/alerts/0123456789"):
        assert server.get(path).status_code == 401, path
        assert server.get(path, authorization="Bearer wrong").status_code == 401, path
    fleet = server.get("/api/fleet", authorization="Bearer s3cret")
    assert fleet.json() == {"evaluated_before": None, "quiet_after": 120, "services": []}
    status = server.get("/api/status", authorization="Bearer s3cret").json()
    assert status["tokens_required"] is True
    shown = server.get("/", authorization="Bearer s3cret")
    assert "token is needed" not in shown.text
