"""Notifications end to end: `sereno serve` tells real receivers on 127.0.0.1 of the sample's
alerts: a webhook and Slack (a local HTTP receiver), a real Alertmanager, a real SMTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers import Alertmanager, HttpReceiver, SmtpServerFactory

from conftest import SAMPLE, Server, event, run_sereno

T0 = 1476057600
DISK, LOAD = "Disk consumption exceeds 90%", "5 min load average exceeds 4.0"
# what the sample makes happen, once a later event has closed its last minute: each alert
# change, in the order a receiver is told of it
SAMPLE_NOTICES = [
    ("firing", DISK, "reporting_pdf02", T0),
    ("firing", LOAD, "InboxService", T0 + 60),
    ("resolved", DISK, "reporting_pdf02", T0 + 60),
    ("firing", DISK, "reporting_pdf02", T0 + 120),
    ("resolved", LOAD, "InboxService", T0 + 180),
    ("firing", DISK, "inbox_production02", T0 + 240),
    ("firing", LOAD, "FacebookRealtime", T0 + 240),
    ("resolved", DISK, "reporting_pdf02", T0 + 240),
]


@pytest.fixture
def serve_with(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> Callable[[str], Server]:
    """Start `sereno serve --config FILE`, FILE holding the config given."""

    def start(config: str) -> Server:
        return start_server("--config", str(write_file("sereno.yaml", config)))

    return start


def push_sample(server: Server) -> None:
    pushed = run_sereno("push", SAMPLE, "--url", f"{server.url}/events", "--batch", "10")
    assert pushed.returncode == 0, pushed.stderr
    server.post_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))


def told(payload: dict[str, Any]) -> tuple[str, str, str, int]:
    """A webhook payload as (status, rule, whom, the minute it is about)."""
    alert = payload["alerts"][0]
    labels = alert["labels"]
    at = alert["endsAt"] if payload["status"] == "resolved" else alert["startsAt"]
    minute = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
    return (payload["status"], labels["alertname"], labels.get("server", labels["service"]), minute)


def by_alert(
    notices: list[tuple[str, str, str, int]],
) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Each alert's (rule, whom) changes, in the order given."""
    changes: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for status, rule, whom, minute in notices:
        changes.setdefault((rule, whom), []).append((status, minute))
    return changes


def unique(receiver: HttpReceiver) -> list[dict[str, Any]]:
    """The payloads acknowledged, each idempotency key once (a repeat after a crash is the
    receiver's to drop)."""
    seen: dict[str, dict[str, Any]] = {}
    for request in receiver.requests:
        if 200 <= request.status < 300:
            seen.setdefault(request.headers["idempotency-key"], request.json)
    return list(seen.values())


def test_a_webhook_is_told_each_change_in_alertmanagers_shape(
    start_server: Callable[..., Server], http_receiver: HttpReceiver
) -> None:
    server = start_server("--webhook", http_receiver.url)
    push_sample(server)
    http_receiver.wait_for(lambda r: len(r.accepted()) >= len(SAMPLE_NOTICES), timeout=15)
    payloads = http_receiver.accepted()
    assert [told(p) for p in payloads] == SAMPLE_NOTICES
    first = payloads[0]
    assert first["version"] == "4"
    assert first["receiver"] == "webhook"
    assert first["groupLabels"] == first["commonLabels"] == first["alerts"][0]["labels"]
    assert first["alerts"][0]["labels"] == {
        "alertname": DISK,
        "severity": "MEDIUM",
        "service": "ReportPDFGenerator",
        "server": "reporting_pdf02",
        "component": "DiskUsedPercentage",
    }
    assert first["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    summary = "DiskUsedPercentage is 0.93 on reporting_pdf02 (ReportPDFGenerator)"
    assert first["commonAnnotations"]["summary"] == summary
    resolved = payloads[2]["alerts"][0]
    assert resolved["status"] == "resolved"
    assert resolved["annotations"]["resolution"] == "recovered to 0.9, resolved after 1m"
    keys = [request.headers["idempotency-key"] for request in http_receiver.requests]
    assert len(set(keys)) == len(keys) == len(SAMPLE_NOTICES)
    assert keys[0] == f"{first['alerts'][0]['fingerprint']}-fired-{T0}"
    metrics = server.metric_until('sereno_notifications_sent_total{receiver="webhook"} 8.0')
    assert 'sereno_notifications_queued{receiver="webhook"} 0.0' in metrics
    row = '<tr data-receiver="webhook"><th scope="row">webhook</th><td>webhook</td>'
    row += '<td class="number">{}</td>' * 5  # queued, sent, failed, retried, dropped
    assert row.format(0, 8, 0, 0, 0) in server.get("/?view=receivers").text


def test_a_receiver_that_is_down_then_failing_gets_everything_each_alert_in_order(
    serve_with: Callable[[str], Server],
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.down()
    server = serve_with(
        f"""
defaults: {{retry_backoff: 50ms, retry_backoff_max: 200ms, timeout: 500ms}}
receivers:
  - {{name: ops, type: webhook, url: "{http_receiver.url}"}}
"""
    )
    push_sample(server)
    server.metric_until('sereno_notifications_queued{receiver="ops"} 8.0')
    http_receiver.up()
    http_receiver.answer(500)  # up, but failing
    http_receiver.wait_for(lambda r: len(r.requests) >= 3)
    http_receiver.delay(1.0)  # then too slow to answer within the timeout
    http_receiver.answer(200)
    http_receiver.wait_for(lambda r: len(r.requests) >= 5)
    http_receiver.delay(0)
    http_receiver.wait_for(lambda r: len(unique(r)) >= len(SAMPLE_NOTICES), timeout=15)
    delivered = [told(p) for p in unique(http_receiver)]
    # an alert whose notice failed lets the others by: each alert's changes are in order
    assert sorted(delivered) == sorted(SAMPLE_NOTICES)
    assert by_alert(delivered) == by_alert(SAMPLE_NOTICES)
    page = server.metric_until('sereno_notifications_sent_total{receiver="ops"} 8.0')
    assert 'sereno_notifications_queued{receiver="ops"} 0.0' in page
    failed = _metric(page, 'sereno_notifications_failed_total{receiver="ops"}')
    retried = _metric(page, 'sereno_notifications_retried_total{receiver="ops"}')
    assert failed >= 5 and retried >= failed
    said = server.stop()
    assert "sereno: notify ops: http://127.0.0.1:" in said
    assert "cannot connect" in said
    assert "sereno: notify ops: delivering again, after" in said


def _metric(page: str, series: str) -> float:
    line = next(line for line in page.splitlines() if line.startswith(series + " "))
    return float(line.split()[-1])


def test_kill_9_between_sending_and_the_answer_repeats_a_notice_and_loses_none(
    start_server: Callable[..., Server], http_receiver: HttpReceiver
) -> None:
    http_receiver.delay(2.0)  # the first notice is sent, and sereno dies waiting for its answer
    server = start_server("--webhook", http_receiver.url)
    push_sample(server)
    http_receiver.wait_for(lambda r: len(r.requests) >= 1)
    server.process.kill()
    server.process.wait()
    http_receiver.delay(0)
    again = start_server("--webhook", http_receiver.url)
    http_receiver.wait_for(lambda r: len(unique(r)) >= len(SAMPLE_NOTICES), timeout=15)
    assert [told(p) for p in unique(http_receiver)] == SAMPLE_NOTICES
    keys = [request.headers["idempotency-key"] for request in http_receiver.requests]
    assert keys[0] == keys[1]  # told twice, with the same key: the receiver can tell
    assert len(keys) == len(SAMPLE_NOTICES) + 1
    again.stop()


def test_alertmanager_receives_firing_then_resolved_alerts_and_tells_its_receivers(
    serve_with: Callable[[str], Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    alertmanager = Alertmanager(tmp_path / "alertmanager", notify=http_receiver.url)
    try:
        _alertmanager_round_trip(serve_with, alertmanager, http_receiver)
    finally:
        alertmanager.stop()


def _alertmanager_round_trip(
    serve_with: Callable[[str], Server],
    alertmanager: Alertmanager,
    http_receiver: HttpReceiver,
) -> None:
    server = serve_with(
        f"""
external_url: http://sereno.example.com:8080/
receivers:
  - {{name: am, type: alertmanager, url: "{alertmanager.url}"}}
"""
    )
    pushed = run_sereno("push", SAMPLE, "--url", f"{server.url}/events", "--batch", "10")
    assert pushed.returncode == 0, pushed.stderr
    firing = _until(lambda: _am_alerts(alertmanager), lambda alerts: len(alerts) == 3)
    assert firing == [
        (LOAD, "HIGH", "FacebookRealtime", None),
        (DISK, "MEDIUM", "InboxService", "inbox_production02"),
        (DISK, "MEDIUM", "ReportPDFGenerator", "reporting_pdf02"),
    ]
    alert = next(a for a in alertmanager.alerts() if a["labels"].get("server") == "reporting_pdf02")
    assert alert["annotations"]["summary"] == (
        "DiskUsedPercentage is 0.95 on reporting_pdf02 (ReportPDFGenerator)"  # as it fired
    )
    assert alert["startsAt"].startswith("2016-10-10T00:02:00")
    assert alert["generatorURL"] == "http://sereno.example.com:8080/"
    # the later minute resolves reporting_pdf02's disk: Alertmanager drops it from its list,
    # and tells its own receiver that it is resolved
    server.post_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))
    left = _until(lambda: _am_alerts(alertmanager), lambda alerts: len(alerts) == 2)
    assert [(rule, whom) for rule, _, whom, _ in left] == [
        (LOAD, "FacebookRealtime"),
        (DISK, "InboxService"),
    ]

    def told_resolved(receiver: HttpReceiver) -> bool:
        return any(
            body["status"] == "resolved" and body["commonLabels"].get("server") == "reporting_pdf02"
            for body in receiver.accepted()
        )

    http_receiver.wait_for(told_resolved, timeout=15)
    # Alertmanager may also tell of InboxService's load alert, resolved at 00:03 while the
    # sample was pushed, depending on its group timing: pick reporting_pdf02's
    resolved = next(
        body["alerts"][0]
        for body in http_receiver.accepted()
        if body["status"] == "resolved" and body["commonLabels"].get("server") == "reporting_pdf02"
    )
    assert resolved["endsAt"].startswith("2016-10-10T00:04:00")
    assert resolved["annotations"]["resolution"] == "recovered to 0.89, resolved after 2m"
    told = {
        (body["status"], body["commonLabels"]["alertname"]) for body in http_receiver.accepted()
    }
    assert ("firing", LOAD) in told


def _am_alerts(alertmanager: Alertmanager) -> list[tuple[str, str, str, str | None]]:
    return sorted(
        (
            a["labels"]["alertname"],
            a["labels"]["severity"],
            a["labels"]["service"],
            a["labels"].get("server"),
        )
        for a in alertmanager.alerts()
    )


def _until(get: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not done(value := get()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_email_goes_through_starttls_and_login_as_text_and_html(
    serve_with: Callable[[str], Server],
    smtp_server: SmtpServerFactory,
    write_file: Callable[[str, str], Path],
) -> None:
    smtp = smtp_server(starttls=True, credentials=("sereno", "s3cret"))
    password = write_file("smtp-password", "s3cret\n")
    server = serve_with(
        f"""
receivers:
  - name: oncall
    type: email
    smarthost: {smtp.host}:{smtp.port}
    from: sereno@example.com
    to: [oncall@example.com]
    username: sereno
    password_file: {password}
    ca_file: {smtp.ca_file}
    min_severity: HIGH
"""
    )
    push_sample(server)
    mails = smtp.wait_for_messages(3, timeout=15)
    subjects = [mail.message["Subject"] for mail in mails]
    assert subjects == [
        f"[FIRING] HIGH: {LOAD}: Load5mAvg is up to 5.6 on 2 of the 3 active servers of "
        "InboxService (threshold 4.0)",
        f"[RESOLVED] HIGH: {LOAD}: Load5mAvg is up to 10.2 on 2 of the 3 active servers of "
        "InboxService (threshold 4.0) - recovered to 4.0, resolved after 2m",
        f"[FIRING] HIGH: {LOAD}: Load5mAvg is up to 6.5 on 1 of the 1 active servers of "
        "FacebookRealtime (threshold 4.0)",
    ]
    message = mails[1].message
    assert mails[1].rcpt_tos == ["oncall@example.com"]
    assert message["From"] == "sereno@example.com"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    facts = [line.split(":", 1) for line in plain.get_content().splitlines() if ":" in line]
    assert ["Resolution", "recovered to 4.0, resolved after 2m"] in [
        [name, value.strip()] for name, value in facts
    ]
    assert "<th align='left'>Resolution</th>" in html.get_content()
    assert message["X-Sereno-Idempotency-Key"].endswith(f"-resolved-{T0 + 180}")


def test_slack_gets_a_message_coloured_by_severity(
    serve_with: Callable[[str], Server],
    http_receiver: HttpReceiver,
) -> None:
    server = serve_with(
        f"""
receivers:
  - name: chat
    type: slack
    url: "{http_receiver.url}"
    channel: "#ops"
    rules: ["{LOAD}"]
    services: [InboxService]
"""
    )
    push_sample(server)
    # a receiver is told in order: once this later alert has come, the sample's have all come
    marker = [event(server=f"inbox_production0{n}", value=9.5, timestamp=T0 + 420) for n in (1, 2)]
    server.post_lines(*marker)
    server.post_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 520))
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 3, timeout=15)
    # nothing else came: FacebookRealtime is not this receiver's service
    firing, resolved, later = http_receiver.accepted()
    assert later["attachments"][0]["fields"][1] == {"title": "Value", "value": "9.5", "short": True}
    assert firing["channel"] == "#ops"
    assert firing["text"] == f"[FIRING] HIGH: {LOAD}"
    attachment = firing["attachments"][0]
    assert attachment["color"] == "#800080"  # the packaged rules' HIGH is magenta
    service, value, alert_id = attachment["fields"]
    assert [service, value] == [
        {"title": "Service", "value": "InboxService", "short": True},
        {"title": "Value", "value": "5.6", "short": True},
    ]
    assert alert_id["title"] == "Alert id" and re.fullmatch("[0-9a-f]{10}", alert_id["value"])
    assert resolved["attachments"][0]["color"] == "#2eb886"
    assert resolved["attachments"][0]["text"].endswith("recovered to 4.0, resolved after 2m")
    server.stop()


def test_a_reload_takes_up_a_new_config_and_refuses_a_bad_one(
    start_server: Callable[..., Server],
    http_receiver: HttpReceiver,
    write_file: Callable[[str, str], Path],
) -> None:
    config = write_file(
        "sereno.yaml", "receivers: [{name: old, type: webhook, url: 'http://127.0.0.1:9/'}]"
    )
    server = start_server("--config", str(config))
    write_file("sereno.yaml", "receivers: [{name: new, type: pager}]")
    refused = httpx.post(f"{server.url}/-/reload")
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "the config file is refused, the old rules and receivers keep running",
        "problems": [
            f"{config}:1:31: receiver 'new': key 'type': unknown receiver type 'pager' "
            "(known: webhook, alertmanager, slack, email)"
        ],
    }
    write_file(
        "sereno.yaml", f"receivers: [{{name: new, type: webhook, url: '{http_receiver.url}'}}]"
    )
    reloaded = httpx.post(f"{server.url}/-/reload")
    assert (reloaded.status_code, reloaded.json()["receivers"]) == (200, 1)
    push_sample(server)
    http_receiver.wait_for(lambda r: len(r.accepted()) >= len(SAMPLE_NOTICES), timeout=15)
    assert [told(p) for p in http_receiver.accepted()] == SAMPLE_NOTICES
    assert {p["receiver"] for p in http_receiver.accepted()} == {"new"}
    page = server.metric_until('sereno_notifications_sent_total{receiver="new"} 8.0')
    assert 'sereno_notifications_sent_total{receiver="old"} 0.0' in page
    assert 'sereno_notifications_queued{receiver="old"}' not in page
    said = server.stop()
    assert (
        "sereno: rules reloaded from <packaged rules.yaml>: 2 rules; notifying 1 receiver" in said
    )


def test_an_alert_still_firing_is_told_again_every_repeat_interval(
    serve_with: Callable[[str], Server],
    http_receiver: HttpReceiver,
) -> None:
    server = serve_with(
        f"receivers: [{{name: ops, type: webhook, url: '{http_receiver.url}', "
        "repeat_interval: 1m}]"
    )
    push_sample(server)
    http_receiver.wait_for(lambda r: len(r.accepted()) >= len(SAMPLE_NOTICES) + 2, timeout=15)
    keys = [request.headers["idempotency-key"] for request in http_receiver.requests]
    reminders = [
        (told(payload)[1:3], key.rsplit("-", 1)[1])
        for payload, key in zip(http_receiver.accepted(), keys, strict=True)
        if "-repeat-" in key
    ]
    # each minute an alert was still firing after the one it fired in
    assert reminders == [
        ((LOAD, "InboxService"), str(T0 + 120)),
        ((DISK, "reporting_pdf02"), str(T0 + 180)),
    ]
    changes = [
        told(payload)
        for payload, key in zip(http_receiver.accepted(), keys, strict=True)
        if "-repeat-" not in key
    ]
    assert changes == SAMPLE_NOTICES


def test_a_silenced_alert_does_not_reach_alertmanager(
    serve_with: Callable[[str], Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    """Without the silence, InboxService's disk (inbox_production02) would be firing in
    Alertmanager at the end of the sample, beside FacebookRealtime's load."""
    alertmanager = Alertmanager(tmp_path / "alertmanager", notify=http_receiver.url)
    try:
        server = serve_with(
            f'receivers:\n  - {{name: am, type: alertmanager, url: "{alertmanager.url}"}}\n'
        )
        silence = {
            "matchers": ["service=InboxService"],
            "duration": "1h",
            "created_by": "ana",
            "comment": "deploy",
        }
        assert httpx.post(f"{server.url}/api/silences", json=silence).status_code == 201
        push_sample(server)  # its last event resolves reporting_pdf02's disk
        _until(lambda: _am_alerts(alertmanager), lambda alerts: len(alerts) == 1)
        server.metric_until('sereno_notifications_queued{receiver="am"} 0.0')
        assert _am_alerts(alertmanager) == [(LOAD, "HIGH", "FacebookRealtime", None)]
    finally:
        alertmanager.stop()
