"""Living with alerts, end to end against the real service and real receivers on 127.0.0.1:
a receiver's quiet hours, a maintenance window, a silence made and expired with `sereno
silence` (told by email), and silences and acks that outlive a kill -9.

Minute m's samples come at its second 35, which also closes minute m - 1 (allowed lateness
30 s). Event time starts at T0, 2016-10-10 00:00 UTC, 02:00 in Madrid. A test that expects a
receiver to be told nothing first waits for something it is told (or another receiver is):
notices are planned when a minute is evaluated, so once a later one has come and nothing is
queued, what was kept back will not come late."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from peers import HttpReceiver, ReceivedMail, SmtpServerFactory, changes_told

from conftest import Server, event, run_sereno

T0 = 1476057600
INBOX, PDF = "InboxService", "ReportPDFGenerator"
# 2016-10-10 in Madrid, the day of the events: spelled with years, months and days of month
# so that it can only hold on that day, whenever the test runs
THAT_DAY = "years: ['2016'], months: [october], days_of_month: ['10'], location: Europe/Madrid"


def disk(server: str, service: str, value: float, minute: int) -> dict[str, Any]:
    return event(server, service, "DiskUsedPercentage", value, T0 + 60 * minute + 35)


def nothing_queued(server: Server, *receivers: str) -> None:
    for name in receivers:
        line = f'sereno_notifications_queued{{receiver="{name}"}} 0.0'
        assert line in server.metric_until(line), f"{name} still has notices queued"


def serve_with(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path], config: str
) -> Server:
    return start_server("--config", str(write_file("sereno.yaml", config)))


def alert_ids(server: Server) -> dict[str, str]:
    """The open alerts' ids, by server."""
    return {alert["server"]: alert["id"] for alert in server.get("/alerts").json()}


def test_a_receiver_in_its_quiet_hours_is_told_nothing_while_another_is_told(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    with HttpReceiver() as muted:
        # quiet from 02:00 to 02:02 in Madrid on the events' day: minutes 0 and 1, not 2 on
        server = serve_with(
            start_server,
            write_file,
            f"""
time_intervals:
  - name: first-two-minutes
    time_intervals:
      - {{{THAT_DAY}, times: [{{start_time: '02:00', end_time: '02:02'}}]}}
receivers:
  - {{name: muted, type: webhook, url: "{muted.url}", mute_time_intervals: [first-two-minutes]}}
  - {{name: awake, type: webhook, url: "{http_receiver.url}"}}
""",
        )
        # inbox_01 fires in minute 0, in the quiet hours; pdf_01 in minute 3, after them
        server.post_lines(
            disk("inbox_01", INBOX, 0.95, 0),
            disk("inbox_01", INBOX, 0.95, 1),
            disk("inbox_01", INBOX, 0.95, 2),
        )
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 1)
        nothing_queued(server, "muted", "awake")
        assert changes_told(http_receiver) == [("firing", "inbox_01", "fired")]
        assert muted.requests == []

        server.post_lines(
            disk("inbox_01", INBOX, 0.95, 3),
            disk("pdf_01", PDF, 0.95, 3),
            disk("inbox_01", INBOX, 0.95, 4),
        )
        # the muted receiver is told of what fired after its quiet hours, and only of that:
        # what they kept back is dropped, not told late
        muted.wait_for(lambda r: len(r.accepted()) >= 1)
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 2)
        nothing_queued(server, "muted", "awake")
        assert changes_told(muted) == [("firing", "pdf_01", "fired")]
        assert changes_told(http_receiver) == [
            ("firing", "inbox_01", "fired"),
            ("firing", "pdf_01", "fired"),
        ]


def test_a_maintenance_window_keeps_its_services_alerts_from_every_receiver(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    server = serve_with(
        start_server,
        write_file,
        f"""
time_intervals:
  - name: that-day
    time_intervals: [{{{THAT_DAY}}}]
maintenance_windows:
  - name: inbox-deploys
    matchers: [service={INBOX}]
    time_intervals: [that-day]
receivers:
  - {{name: ops, type: webhook, url: "{http_receiver.url}"}}
""",
    )
    # both disks fire in minute 0 and recover in minute 1
    server.post_lines(
        disk("inbox_01", INBOX, 0.95, 0),
        disk("pdf_01", PDF, 0.95, 0),
        disk("inbox_01", INBOX, 0.5, 1),
        disk("pdf_01", PDF, 0.5, 1),
        disk("inbox_01", INBOX, 0.5, 2),
        disk("inbox_02", INBOX, 0.95, 2),
    )
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 2)
    nothing_queued(server, "ops")
    # the alert open now is shown as in the window, as the API lists it
    [open_alert] = server.alerts_until(bool)
    assert (open_alert["server"], open_alert["in_maintenance"]) == ("inbox_02", "inbox-deploys")
    # InboxService's alert was neither told to fire nor to resolve
    assert changes_told(http_receiver) == [
        ("firing", "pdf_01", "fired"),
        ("resolved", "pdf_01", "resolved"),
    ]
    # but it was evaluated and recorded as any other
    history = server.get("/alerts/history").json()
    assert {record["server"] for record in history} >= {"inbox_01", "pdf_01"}


def facts(mail: ReceivedMail) -> dict[str, str]:
    """The facts of an email's plain text part (`Name: value` lines)."""
    plain = mail.message.get_body(("plain",))
    assert plain is not None
    lines = [line.split(":", 1) for line in plain.get_content().splitlines() if ": " in line]
    return {name: value.strip() for name, value in lines}


def test_a_silence_made_with_the_cli_stops_an_email_and_once_expired_the_alert_is_told(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    smtp_server: SmtpServerFactory,
) -> None:
    smtp = smtp_server()
    server = serve_with(
        start_server,
        write_file,
        f"""
receivers:
  - name: oncall
    type: email
    smarthost: {smtp.host}:{smtp.port}
    starttls: false
    from: sereno@example.com
    to: [oncall@example.com]
""",
    )
    made = run_sereno(
        "silence", "add", f"service={INBOX}", "--for", "1h", "--comment", "deploy",
        "--author", "ana", "--url", server.url,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.strip()
    # both disks fire in minute 0 and go on firing
    server.post_lines(
        disk("inbox_01", INBOX, 0.95, 0),
        disk("pdf_01", PDF, 0.95, 0),
        disk("inbox_01", INBOX, 0.95, 1),
        disk("pdf_01", PDF, 0.95, 1),
    )
    [first] = smtp.wait_for_messages(1)
    nothing_queued(server, "oncall")
    assert [facts(mail)["Server"] for mail in smtp.messages] == ["pdf_01"]
    ids = alert_ids(server)
    assert facts(first)["Alert id"] == ids["pdf_01"]
    silenced = {a["server"]: a["silenced_by"] for a in server.get("/alerts").json()}
    assert silenced == {"inbox_01": [silence_id], "pdf_01": []}

    expired = run_sereno("silence", "expire", silence_id, "--url", server.url)
    assert expired.returncode == 0, expired.stderr
    # minute 1, the next evaluated, tells of inbox_01, which fires still
    server.post_lines(disk("inbox_01", INBOX, 0.95, 2), disk("pdf_01", PDF, 0.95, 2))
    mails = smtp.wait_for_messages(2)
    nothing_queued(server, "oncall")
    assert len(mails) == 2
    unsilenced = mails[1]
    assert facts(unsilenced)["Server"] == "inbox_01"
    assert facts(unsilenced)["Alert id"] == ids["inbox_01"]
    assert unsilenced.message["Subject"].startswith("[FIRING] MEDIUM: Disk consumption")
    # an email says which change it tells only in its idempotency key
    assert unsilenced.message["X-Sereno-Idempotency-Key"].endswith(f"-unsilenced-{T0 + 60}")


def test_silences_and_acks_outlive_a_kill_9_and_go_on_working(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    config = write_file(
        "sereno.yaml",
        # reminded every minute, so that the ack is seen to hold: an acked alert is not reminded of
        f'receivers:\n  - {{name: ops, type: webhook, url: "{http_receiver.url}", '
        "repeat_interval: 1m}\n",
    )
    server = start_server("--config", str(config))
    made = httpx.post(
        f"{server.url}/api/silences",
        json={
            "matchers": ["server=inbox_02"],
            "duration": "1h",
            "created_by": "ana",
            "comment": "disk swap",
        },
    )
    assert made.status_code == 201, made.text
    silence_id = made.json()["id"]
    # inbox_01 and inbox_02 fire in minute 0; inbox_02 is silenced
    server.post_lines(
        disk("inbox_01", INBOX, 0.95, 0),
        disk("inbox_02", INBOX, 0.95, 0),
        disk("inbox_01", INBOX, 0.95, 1),
        disk("inbox_02", INBOX, 0.95, 1),
    )
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 1)
    inbox_01 = alert_ids(server)["inbox_01"]
    acked = run_sereno("ack", inbox_01, "--author", "bob", "--url", server.url)
    assert acked.returncode == 0, acked.stderr

    server.process.kill()
    server.process.wait()
    again = start_server("--config", str(config))  # the same working directory: the same state
    active = again.get("/api/silences").json()["active"]
    assert [(s["id"], s["created_by"]) for s in active] == [(silence_id, "ana")]
    alerts = {alert["server"]: alert for alert in again.get("/alerts").json()}
    assert alerts["inbox_01"]["ack"]["by"] == "bob"
    assert alerts["inbox_02"]["ack"] is None
    assert alerts["inbox_02"]["silenced_by"] == [silence_id]

    # minutes 1 and 2 are evaluated: pdf_01 fires in minute 2 and is told; inbox_02, still
    # silenced, is not told, and inbox_01, acknowledged, is not reminded of
    again.post_lines(
        disk("inbox_01", INBOX, 0.95, 2),
        disk("inbox_02", INBOX, 0.95, 2),
        disk("pdf_01", PDF, 0.95, 2),
        disk("inbox_01", INBOX, 0.95, 3),
        disk("inbox_02", INBOX, 0.95, 3),
        disk("pdf_01", PDF, 0.95, 3),
    )
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 2)
    nothing_queued(again, "ops")
    assert changes_told(http_receiver) == [
        ("firing", "inbox_01", "fired"),
        ("firing", "pdf_01", "fired"),
    ]


def test_an_outage_of_forty_servers_is_one_message_per_grouping_receiver_across_a_kill_9(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    with HttpReceiver() as slack:  # a Slack stand-in: it takes the webhook's JSON
        config = f"""
receivers:
  - {{name: ops, type: webhook, url: "{http_receiver.url}", group_by: [service, rule],
     group_wait: 30s, group_interval: 5m}}
  - {{name: chat, type: slack, url: "{slack.url}", group_by: [service]}}
"""
        server = serve_with(start_server, write_file, config)
        # forty disks fill in minute 0: each receiver's group waits for group_wait
        server.post_lines(*(disk(f"inbox_{n:02}", INBOX, 0.95, 0) for n in range(40)))
        server.alerts_until(lambda alerts: len(alerts) == 40)
        # killed with the groups not yet told; the restart takes them up from the state
        server.process.kill()
        server.process.wait()
        again = serve_with(start_server, write_file, config)
        # minute 1 closes minute 0; minute 2 closes minute 1, when the groups are due
        again.post_lines(*(disk(f"inbox_{n:02}", INBOX, 0.95, 1) for n in range(40)))
        again.post_lines(disk("inbox_00", INBOX, 0.95, 2))
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 1)
        slack.wait_for(lambda r: len(r.accepted()) >= 1)
        nothing_queued(again, "ops", "chat")
        [message] = http_receiver.accepted()
        [chat] = slack.accepted()
    assert len(message["alerts"]) == 40
    assert message["groupLabels"] == {"alertname": "Disk consumption exceeds 90%", "service": INBOX}
    assert chat["text"].startswith(f"[FIRING:40] service={INBOX} - 40 firing")
    assert len(chat["attachments"]) == 20  # the first twenty shown
