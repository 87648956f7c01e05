"""`sereno serve` and `sereno push`, end to end: the real server on a free 127.0.0.1 port."""

from __future__ import annotations

import gzip
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from peers import free_port

from conftest import SAMPLE, Server, event, json_lines, run_sereno

T0 = 1476057600


def test_each_body_format_is_taken(start_server: Callable[..., Server]) -> None:
    server = start_server()
    one = json.dumps(event()).encode()
    array = SAMPLE.read_bytes()
    lines = json_lines(event(), event(server="b"))
    # an hour on: the sample's minutes may be evaluated already, and their events late
    an_hour_on = [{**e, "timestamp": e["timestamp"] + 3600} for e in json.loads(array)]
    answers = [
        server.post(one),
        server.post(lines, "application/x-ndjson"),
        server.post(array),
        server.post(gzip.compress(json.dumps(an_hour_on).encode()), **{"content-encoding": "gzip"}),
    ]
    assert [a.status_code for a in answers] == [202] * 4
    assert [a.json()["accepted"] for a in answers] == [1, 2, 71, 71]


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
    refused = server.post(b"[]")
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
    assert refused.json() == {"error": "a valid bearer token is required"}
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
    # fired at T0+120 and still fires; InboxService's load was resolved at T0+180. T0+240 is
    # the next minute to close, and looked at early: inbox_production02's disk fires as it
    # comes, and FacebookRealtime's load as its two active servers have reported
    alerts = server.alerts_until(lambda alerts: len(alerts) == 3)
    assert [
        (a["rule"][:4], a["server"] or a["service"], a["since"], a["value"]) for a in alerts
    ] == [
        ("Disk", "reporting_pdf02", T0 + 120, 0.91),
        ("Disk", "inbox_production02", T0 + 240, 0.97),
        ("5 mi", "FacebookRealtime", T0 + 240, 6.5),
    ]
    assert server.get("/metrics").text.count("sereno_windows_evaluated_total 4.0") == 1
    later = json_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))
    assert server.post(later, "application/x-ndjson").status_code == 202
    # now T0+240 is evaluated: reporting_pdf02's latest disk sample is 0.89 (resolved)
    alerts = server.alerts_until(lambda alerts: len(alerts) == 2)
    assert sorted((a["server"] or a["service"], a["state"], a["since"]) for a in alerts) == [
        ("FacebookRealtime", "firing", T0 + 240),
        ("inbox_production02", "firing", T0 + 240),
    ]
    assert sorted(logged_changes(server)) == sorted(SAMPLE_CHANGES)


def test_metrics_count_what_came_in(start_server: Callable[..., Server]) -> None:
    server = start_server()
    server.post(SAMPLE.read_bytes())
    server.post(b"x", "text/plain")
    server.alerts_until(lambda alerts: len(alerts) == 3)
    page = server.get("/metrics").text
    assert "sereno_events_accepted_total 71.0" in page
    assert 'sereno_events_rejected_total{reason="unsupported_type"} 1.0' in page
    assert "sereno_windows_evaluated_total 4.0" in page
    assert 'sereno_alerts{rule="Disk consumption exceeds 90%",state="firing"} 2.0' in page
    assert 'sereno_alerts{rule="5 min load average exceeds 4.0",state="firing"} 1.0' in page


def test_sigterm_stops_the_server_cleanly(start_server: Callable[..., Server]) -> None:
    assert "sereno: stopped" in start_server().stop()


# the sample's alert changes up to T0+240, the last minute a T0+400 event closes: each once
SAMPLE_CHANGES = [
    ("5 mi", "InboxService", "firing", T0 + 60),
    ("5 mi", "InboxService", "resolved", T0 + 60),
    ("Disk", "inbox_production02", "firing", T0 + 240),
    ("Disk", "reporting_pdf02", "firing", T0),
    ("Disk", "reporting_pdf02", "firing", T0 + 120),
    ("Disk", "reporting_pdf02", "resolved", T0),
    ("Disk", "reporting_pdf02", "resolved", T0 + 120),
    ("5 mi", "FacebookRealtime", "firing", T0 + 240),
]
LATER = json_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))


def logged_changes(server: Server) -> list[tuple[str, str, str, int]]:
    changes = [json.loads(line) for line in server.log.read_text().splitlines()]
    return [(c["rule"][:4], c["server"] or c["service"], c["state"], c["started"]) for c in changes]


def test_after_kill_9_no_alert_is_lost_or_raised_twice(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    pushed = run_sereno("push", SAMPLE, "--url", f"{server.url}/events", "--batch", "10")
    assert pushed.returncode == 0, pushed.stderr
    firing = server.alerts_until(lambda alerts: len(alerts) > 0)
    server.process.kill()
    server.process.wait()
    # T0+180 and T0+240 were open: their events are in the journal, not yet evaluated
    again = start_server()
    assert again.get("/alerts").json() == firing
    assert again.post(LATER, "application/x-ndjson").status_code == 202
    alerts = again.alerts_until(lambda alerts: len(alerts) == 2)
    assert sorted((a["server"] or a["service"], a["state"], a["since"]) for a in alerts) == [
        ("FacebookRealtime", "firing", T0 + 240),
        ("inbox_production02", "firing", T0 + 240),
    ]
    assert sorted(logged_changes(again)) == sorted(SAMPLE_CHANGES)


def test_a_clean_stop_keeps_a_pending_alert_waiting(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    rules = write_file(
        "rules.yaml", HOT_RULES.replace("    condition:", "    for: 2m\n    condition:")
    )
    server = start_server("-r", str(rules))
    server.post_lines(hot(T0 + 10), event(timestamp=T0 + 95))
    pending = server.alerts_until(lambda alerts: len(alerts) > 0)
    assert [(a["state"], a["since"]) for a in pending] == [("pending", T0)]
    server.stop()
    again = start_server("-r", str(rules))
    assert again.get("/alerts").json() == pending
    again.post_lines(hot(T0 + 100))  # the second minute in a row: it fires (before T0+60 closes)
    firing = again.alerts_until(lambda alerts: alerts[0]["state"] == "firing")
    assert [(a["state"], a["since"]) for a in firing] == [("firing", T0 + 60)]


def test_the_history_of_alerts(start_server: Callable[..., Server]) -> None:
    server = start_server()
    server.post(SAMPLE.read_bytes())
    server.post(LATER, "application/x-ndjson")
    server.alerts_until(lambda alerts: len(alerts) == 2)
    history = server.get("/alerts/history").json()
    assert [
        (h["rule"][:4], h["server"] or h["service"], h["state"], h["fired"]) for h in history
    ] == [
        ("5 mi", "FacebookRealtime", "firing", T0 + 240),
        ("Disk", "inbox_production02", "firing", T0 + 240),
        ("Disk", "reporting_pdf02", "resolved", T0 + 120),
        ("5 mi", "InboxService", "resolved", T0 + 60),
        ("Disk", "reporting_pdf02", "resolved", T0),
    ]
    load = server.get("/alerts/history?rule=5 min load average exceeds 4.0").json()
    assert [h["service"] for h in load] == ["FacebookRealtime", "InboxService"]
    since = server.get(f"/alerts/history?since={T0 + 200}&limit=10").json()
    assert len(since) == 3  # the two firing, and the one resolved at T0+240
    iso = server.get("/alerts/history?since=2016-10-10T00:03:20Z").json()
    assert iso == since
    assert server.get("/alerts/history?since=yesterday").status_code == 400
    assert server.get("/alerts/history?limit=0").status_code == 400


HOT_RULES = """
severities: {HIGH: {}}
rules:
  - name: hot
    severity: HIGH
    condition: component == "Temperature" and value > 90
"""
EU_RULES = """
severities: {HIGH: {}}
rules:
  - name: hot in eu
    severity: HIGH
    condition: component == "Temperature" and value > 50 and region == "eu"
"""


def hot(timestamp: float, value: float = 95, **extra: Any) -> dict[str, Any]:
    return event(component="Temperature", value=value, timestamp=timestamp, **extra)


def test_reload_puts_good_rules_to_work_and_refuses_bad_ones(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    rules = write_file("rules.yaml", HOT_RULES)
    server = start_server("-r", str(rules))
    rules.write_text("rules: [")
    refused = httpx.post(f"{server.url}/-/reload")
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "the rules file is refused, the old rules and receivers keep running"
    )
    assert refused.json()["problems"]
    server.post_lines(hot(T0 + 10), event(timestamp=T0 + 95))
    assert [a["rule"] for a in server.alerts_until(bool)] == ["hot"]  # the old rules still run
    rules.write_text(EU_RULES)
    reloaded = httpx.post(f"{server.url}/-/reload")
    assert (reloaded.status_code, reloaded.json()["rules"]) == (200, 1)
    # the new rules read a field of their own, which ingest now keeps
    server.post_lines(hot(T0 + 100, 60, region="eu"), event(timestamp=T0 + 155))
    alerts = server.alerts_until(lambda alerts: alerts[0]["rule"] == "hot in eu")
    assert [(a["rule"], a["since"]) for a in alerts] == [("hot in eu", T0 + 60)]
    # the alert of the rule that is gone is no longer watched: it ends as dropped
    history = server.get("/alerts/history").json()
    assert [(h["rule"], h["state"], h["fired"], h["ended"]) for h in history] == [
        ("hot in eu", "firing", T0 + 60, None),
        ("hot", "dropped", T0, T0 + 60),
    ]
    assert ("hot", "inbox_production01", "dropped", T0) in logged_changes(server)
    page = server.get("/metrics").text
    assert "sereno_rules_reloads_total 1.0" in page
    assert "sereno_rules_reload_failures_total 1.0" in page
    said = server.stop()
    assert "sereno: reload refused, the old rules and receivers keep running" in said
    assert f"sereno: rules reloaded from {rules}: 1 rules" in said


def test_sighup_reloads_the_rules(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    rules = write_file("rules.yaml", HOT_RULES)
    server = start_server("-r", str(rules))
    rules.write_text("rules: [")
    server.process.send_signal(signal.SIGHUP)
    assert "sereno_rules_reload_failures_total 1.0" in server.metric_until(
        "sereno_rules_reload_failures_total 1.0"
    )
    rules.write_text(EU_RULES)
    server.process.send_signal(signal.SIGHUP)
    assert "sereno_rules_reloads_total 1.0" in server.metric_until("sereno_rules_reloads_total 1.0")
    server.post_lines(hot(T0 + 10, 60, region="eu"), event(timestamp=T0 + 95))
    assert [a["rule"] for a in server.alerts_until(bool)] == ["hot in eu"]


def test_the_web_page_shows_the_open_alerts_and_the_services_counts(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    rules = write_file("rules.yaml", HOT_RULES.replace("name: hot", "name: hot <&> bothered"))
    server = start_server("-r", str(rules))
    server.post_lines(hot(T0 + 10), event(timestamp=T0 + 95))
    server.alerts_until(bool)
    page = server.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>Sereno: 1 firing, 0 pending</title>" in page.text
    [alert] = server.get("/alerts").json()
    alert_id = alert["id"]
    row = (
        f'<tr class="alert state-firing" id="alert-{alert_id}" '
        f'data-alert-id="{alert_id}" data-state="firing">'
        '<td><span class="sev">HIGH</span></td><td class="state">firing</td>'
        f'<td><a href="/?view=alert&amp;id={alert_id}">hot &lt;&amp;&gt; bothered</a></td>'
        "<td>InboxService</td><td>inbox_production01</td>"
        '<td><time datetime="2016-10-10T00:00:00+00:00">2016-10-10 00:00:00</time></td>'
        '<td class="number">95</td><td></td></tr>'
    )
    assert row in page.text
    receivers = server.get("/?view=receivers").text
    assert '<tr><th scope="row">events evaluated</th><td class="number">2</td></tr>' in receivers
    assert '<p class="empty">No receiver is told of alerts' in receivers


def test_the_openapi_document_describes_every_route_with_its_schemas(
    start_server: Callable[..., Server],
) -> None:
    document = start_server().get("/openapi.json").json()
    paths = document["paths"]
    assert sorted(paths) == [
        "/",
        "/-/reload",
        "/alerts",
        "/alerts/history",
        "/api/alerts/{alert_id}",
        "/api/alerts/{alert_id}/ack",
        "/api/fleet",
        "/api/receivers",
        "/api/receivers/{name}/test",
        "/api/rules",
        "/api/silences",
        "/api/silences/{silence_id}",
        "/api/status",
        "/dead-letters",
        "/events",
        "/healthz",
        "/metrics",
        "/readyz",
    ]
    ingest = paths["/events"]["post"]
    assert sorted(ingest["requestBody"]["content"]) == ["application/json", "application/x-ndjson"]
    assert sorted(ingest["responses"]) == ["202", "400", "401", "413", "415", "503"]
    schemas = document["components"]["schemas"]
    assert sorted(schemas["IngestAnswer"]["properties"]) == ["accepted", "errors", "rejected"]
    assert sorted(schemas["Event"]["required"]) == [
        "active",
        "component",
        "server",
        "service",
        "timestamp",
        "value",
    ]
    assert sorted(schemas["DeadLetter"]["properties"]) == ["events", "reason", "seq", "set_aside"]
    assert sorted(paths["/api/silences"]) == ["get", "post"]
    assert sorted(paths["/api/silences/{silence_id}"]) == ["delete", "get"]
    assert sorted(paths["/api/silences"]["post"]["responses"]) == ["201", "400", "401", "413"]
    assert schemas["SilenceRequest"]["required"] == ["matchers", "created_by", "comment"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document))
    assert refs and set(refs) <= set(schemas)  # every reference resolves


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


def test_a_port_or_a_state_file_in_use_is_refused(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server()
    port = server.url.rsplit(":", 1)[1]
    elsewhere = tmp_path / "elsewhere.db"
    taken = run_sereno("serve", "--listen", f"127.0.0.1:{port}", "--db", elsewhere)
    assert (taken.returncode, taken.stderr.strip()) == (
        2,
        f"sereno: cannot listen on {server.url}: Address already in use",
    )
    in_use = run_sereno(
        "serve", "--listen", f"127.0.0.1:{free_port()}", "--db", tmp_path / "sereno.db"
    )
    assert (in_use.returncode, in_use.stderr.strip()) == (
        2,
        f"sereno: the state file {tmp_path / 'sereno.db'} is in use by another sereno serve",
    )


def test_push_to_nowhere_says_so() -> None:
    result = run_sereno("push", SAMPLE, "--url", f"http://127.0.0.1:{free_port()}/events")
    assert result.returncode == 2
    assert result.stderr.startswith("sereno: cannot reach http://127.0.0.1:")
    assert "Traceback" not in result.stderr
