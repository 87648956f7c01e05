"""Notifications piece by piece: the config file, which notices are planned, their text, and
the delivery workers against a real HTTP receiver on 127.0.0.1; `sereno check --config` and
`sereno notify-test` as a user runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from peers import HttpReceiver, SmtpServerFactory, free_port

from sereno.engine.alerts import AbsentAlert, AlertKey, MajorityAlert, ServerAlert
from sereno.engine.engine import EngineState
from sereno.engine.lifecycle import Episode, State
from sereno.engine.windows import Watermark
from sereno.events.schema import Event
from sereno.notify.config import (
    ConfigError,
    NotifyConfig,
    ReceiverSpec,
    Timing,
    load_config,
    parse_config,
)
from sereno.notify.delivery import Delivery, NoticeOutbox, notice_outbox
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.senders import build_sender
from sereno.notify.summary import summarize
from sereno.notify.transport import retry_after
from sereno.rules.rulefmt import load_default_rules, parse_rules
from sereno.state.store import Snapshot, StateStore, create

from conftest import DATA, SAMPLE, example_files, refusal_messages, run_sereno

RULES = load_default_rules()
DISK = "Disk consumption exceeds 90%"
LOAD = "5 min load average exceeds 4.0"
T0 = 1476057600


def config(text: str) -> NotifyConfig:
    return parse_config(text, "sereno.yaml", RULES)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        config(text)
    return refused.value.problems


CONFIG_FILES = example_files("configs")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[path.name for path in CONFIG_FILES])
def test_a_config_file_loads_or_is_refused_with_every_problem_and_where_it_is(
    path: Path,
) -> None:
    """`NAME.good.yaml` loads; `NAME.bad.yaml` is refused with every problem of `NAME.bad.txt`,
    not just the first."""
    if path.name.endswith(".good.yaml"):
        load_config(path, RULES)
        return
    with pytest.raises(ConfigError) as refused:
        load_config(path, RULES)
    assert refused.value.problems == refusal_messages(path)


def test_defaults_apply_to_every_receiver_that_does_not_set_its_own() -> None:
    loaded = load_config(DATA / "configs" / "defaults-for-every-receiver.good.yaml", RULES)
    a, b = loaded.receivers
    assert (a.timing.repeat_interval, a.min_severity, a.timing.retry_backoff) == (
        3600,
        "HIGH",
        0.25,
    )
    assert (b.timing.repeat_interval, b.min_severity, b.timing.retry_backoff) == (1800, "LOW", 0.25)
    assert a.timing.give_up_after == Timing().give_up_after


def episode(
    rule: str = DISK,
    server: str = "web1",
    service: str = "web",
    severity: str = "MEDIUM",
    state: State = State.FIRING,
    started: int = T0,
    ended: int | None = None,
    value: float = 0.95,
) -> Episode:
    alert = ServerAlert(rule, severity, started, "DiskUsedPercentage", value, server, service)
    fired = started if state is not State.PENDING else None
    # as the lifecycle hands them on: the change each is, and the notice it calls for
    tell = {State.FIRING: "fired", State.RESOLVED: "resolved"}.get(state)
    return Episode(
        AlertKey(rule, service, server),
        severity,
        state,
        started,
        started,
        value,
        1,
        alert,
        fired=fired,
        ended=ended,
        recovered=0.5 if ended is not None else None,
        notified_at=fired,
        changed_at=ended if ended is not None else started,
        tell=tell,
    )


def receivers(*specs: ReceiverSpec) -> NotifyConfig:
    return NotifyConfig("test", specs)


def test_each_receiver_hears_only_what_its_filters_let_through() -> None:
    planner = Planner(
        receivers(
            ReceiverSpec("all", "webhook", "http://x"),
            ReceiverSpec("urgent", "webhook", "http://x", min_severity="HIGH"),
            ReceiverSpec("web", "webhook", "http://x", services=frozenset({"web"})),
            ReceiverSpec("load", "webhook", "http://x", rules=frozenset({LOAD})),
        ),
        RULES,
    )
    changes = [
        episode(),
        episode(service="db", severity="CRITICAL"),
        episode(state=State.PENDING),  # nobody is told of a pending alert
        episode(state=State.RESOLVED, ended=T0 + 120),
    ]
    planned = [(name, n.service, n.severity, n.status) for name, n in planner.for_changes(changes)]
    assert planned == [
        ("all", "web", "MEDIUM", "firing"),
        ("web", "web", "MEDIUM", "firing"),
        ("all", "db", "CRITICAL", "firing"),
        ("urgent", "db", "CRITICAL", "firing"),
        ("all", "web", "MEDIUM", "resolved"),
        ("web", "web", "MEDIUM", "resolved"),
    ]


def test_an_alert_still_firing_is_told_again_every_repeat_interval() -> None:
    planner = Planner(
        receivers(
            ReceiverSpec("hourly", "webhook", "http://x", timing=Timing(repeat_interval=3600)),
            ReceiverSpec("am", "alertmanager", "http://x"),  # refreshed, not reminded
        ),
        RULES,
    )
    firing = [episode()]
    reminded = [
        start
        for start in range(T0, T0 + 3 * 3600 + 60, 60)
        for _ in planner.repeats(firing, start, start - 60)
    ]
    assert reminded == [T0 + 3600, T0 + 7200, T0 + 10800]
    # minutes evaluated with a gap (the service was down): the reminder is not lost
    assert len(planner.repeats(firing, T0 + 3600 + 300, T0 + 3600 - 300)) == 1


# T0 is a monday at 00:00 UTC: web is deployed from then until 01:00
MAINTENANCE = """
time_intervals:
  - name: monday-deploys
    time_intervals: [{weekdays: [monday], times: [{start_time: '00:00', end_time: '01:00'}]}]
maintenance_windows:
  - {name: web-deploys, matchers: [service=web], time_intervals: [monday-deploys]}
receivers:
  - {name: all, type: webhook, url: "http://x/all", repeat_interval: 30m}
  - {name: urgent, type: webhook, url: "http://x/urgent", min_severity: MEDIUM}
"""


def test_a_maintenance_window_keeps_what_it_covers_from_every_receiver_while_in_force() -> None:
    planner = Planner(config(MAINTENANCE), RULES)
    during, after = T0 + 600, T0 + 3600

    def told(*changes: Episode) -> list[tuple[str, str, str]]:
        return [(name, n.service, n.status) for name, n in planner.for_changes(changes)]

    assert told(episode(started=during), episode(service="db", started=during)) == [
        ("all", "db", "firing"),
        ("urgent", "db", "firing"),
    ]
    assert told(episode(state=State.RESOLVED, started=T0 - 3600, ended=during)) == []
    assert told(episode(started=after)) == [("all", "web", "firing"), ("urgent", "web", "firing")]


def test_reminders_due_in_a_maintenance_window_are_dropped_not_sent_when_it_ends() -> None:
    planner = Planner(config(MAINTENANCE), RULES)
    # told at 23:35 on sunday, then due every 30 minutes: 00:05 and 00:35 fall in the window
    firing = [episode(started=T0 - 1500), episode(service="db", started=T0 - 1500)]
    reminded = [
        (name, notice.service, (start - T0) // 60)
        for start in range(T0 - 1200, T0 + 4200, 60)
        for name, notice in planner.repeats(firing, start, start - 60)
    ]
    assert reminded == [("all", "db", 5), ("all", "db", 35), ("all", "web", 65), ("all", "db", 65)]


def test_a_resolved_notice_says_what_it_recovered_to_and_how_long_it_lasted() -> None:
    rules = parse_rules(
        """
severities: {HIGH: {color: red}}
rules:
  - name: disk
    severity: HIGH
    condition: component == "DiskUsedPercentage" and value > 0.9
    summary: "{server} disk at {value:.0%}"
""",
        "rules.yaml",
    )
    planner = Planner(receivers(ReceiverSpec("a", "webhook", "http://x")), rules)
    resolved = episode(rule="disk", severity="HIGH", state=State.RESOLVED, ended=T0 + 5460)
    ((_, notice),) = planner.for_changes([resolved])
    assert notice.text == "web1 disk at 95% - recovered to 0.5, resolved after 1h31m"
    assert notice.title == "[RESOLVED] HIGH: disk"
    assert notice.key == f"{notice.fingerprint}-resolved-{T0 + 5460}"
    assert notice.color == "red"


def notice(number: int) -> Notice:
    return Notice(
        "firing",
        "fired",
        DISK,
        "MEDIUM",
        "web",
        f"web{number}",
        "DiskUsedPercentage",
        0.95,
        f"notice {number}",
        "",
        T0,
        T0 + number,
    )


@pytest.fixture
def outbox_with(tmp_path: Path) -> Callable[[int, str], NoticeOutbox]:
    """An outbox holding `count` notices for `receiver`, queued in one checkpoint."""

    def fill(count: int, receiver: str) -> NoticeOutbox:
        db = tmp_path / "sereno.db"
        create(db)
        store = StateStore(db, Event)
        snapshot = Snapshot(0, Watermark(float("-inf"), float("-inf")), EngineState())
        store.checkpoint(snapshot, [], outgoing=[(receiver, notice(n)) for n in range(count)])
        store.close()
        return notice_outbox(db)

    return fill


def start_delivery(outbox: NoticeOutbox, spec: ReceiverSpec, logged: list[str]) -> Delivery:
    delivery = Delivery(
        outbox,
        [spec],
        {spec.name: build_sender(spec)},
        Planner(receivers(spec), RULES),
        log=logged.append,
    )
    delivery.start()
    return delivery


FAST = Timing(timeout=0.5, retry_backoff=0.02, retry_backoff_max=0.1)


def test_notices_too_old_to_send_are_dropped_counted_and_logged(
    outbox_with: Callable[[int, str], NoticeOutbox], http_receiver: HttpReceiver
) -> None:
    http_receiver.down()
    outbox = outbox_with(3, "hook")
    spec = ReceiverSpec(
        "hook",
        "webhook",
        http_receiver.url,
        timing=Timing(timeout=0.5, retry_backoff=0.05, retry_backoff_max=0.1, give_up_after=0.3),
    )
    logged: list[str] = []
    delivery = start_delivery(outbox, spec, logged)
    deadline = time.monotonic() + 5
    while delivery.counts["hook"].dropped < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    delivery.stop()
    assert delivery.counts["hook"].dropped == 3
    assert delivery.counts["hook"].sent == 0
    assert delivery.depths() == {"hook": 0}
    assert logged[0].startswith("sereno: notify hook: http://127.0.0.1:")
    assert [line for line in logged if "gave up" in line] == [
        f"sereno: notify hook: gave up on 1 notification older than 0.3s; the last: notice {n}"
        for n in range(3)
    ]


def test_notices_for_a_receiver_no_longer_configured_are_dropped_and_said(
    outbox_with: Callable[[int, str], NoticeOutbox], http_receiver: HttpReceiver
) -> None:
    outbox = outbox_with(2, "gone")
    logged: list[str] = []
    delivery = start_delivery(outbox, ReceiverSpec("hook", "webhook", http_receiver.url), logged)
    delivery.stop()
    assert logged == [
        "sereno: dropped 2 queued notifications for receiver 'gone', which the config no longer has"
    ]
    assert outbox.depths() == {}


def test_a_batch_of_notices_is_delivered_each_once_after_failures(
    outbox_with: Callable[[int, str], NoticeOutbox], http_receiver: HttpReceiver
) -> None:
    http_receiver.answer(503)
    outbox = outbox_with(30, "hook")
    logged: list[str] = []
    delivery = start_delivery(
        outbox, ReceiverSpec("hook", "webhook", http_receiver.url, timing=FAST), logged
    )
    http_receiver.wait_for(lambda r: len(r.requests) >= 4)
    http_receiver.answer(200)
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 30)
    delivery.stop()
    summaries = [body["commonAnnotations"]["summary"] for body in http_receiver.accepted()]
    # each of its own alert: a failed one lets the others by, so their order may change
    assert sorted(summaries, key=lambda text: int(text.split()[1])) == [
        f"notice {n}" for n in range(30)
    ]
    counts = delivery.counts["hook"]
    assert counts.sent == 30 and counts.failed >= 4 and counts.retried == counts.failed
    assert "answered 503 Service Unavailable" in logged[0]


def test_check_lists_the_receivers_of_a_config() -> None:
    good = DATA / "configs" / "two-receivers.good.yaml"
    result = run_sereno("check", "--config", good)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(
        f"{good}: valid, 2 receivers\n"
        "  ops (webhook): https://hooks.example.com/sereno\n"
        "    HIGH and above; repeated every 4h\n"
        "  am (alertmanager): http://127.0.0.1:9093\n"
        "    every severity; firing alerts re-sent every 1m\n"
    )


def test_notify_test_says_which_receivers_accepted_the_drill(
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
    smtp_server: SmtpServerFactory,
) -> None:
    smtp = smtp_server()
    nowhere = f"http://127.0.0.1:{free_port()}/hook"
    config = write_file(
        "sereno.yaml",
        f"""
receivers:
  - {{name: hook, type: webhook, url: "{http_receiver.url}"}}
  - {{name: mail, type: email, smarthost: "{smtp.host}:{smtp.port}", starttls: false,
     from: sereno@example.com, to: [oncall@example.com]}}
  - {{name: down, type: slack, url: "{nowhere}", timeout: 2s}}
""",
    )
    result = run_sereno("notify-test", "--config", config)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ["hook (webhook): accepted", "mail (email): accepted"]
    # a Slack webhook's path is its secret
    shown = nowhere.removesuffix("/hook") + "/<secret>"
    assert lines[2].startswith(f"down (slack): FAILED: {shown}: cannot connect")
    body = http_receiver.accepted()[0]
    assert body["alerts"][0]["labels"]["alertname"] == "Sereno test notification"
    assert body["commonAnnotations"]["summary"].startswith("TEST: this is a test notification")
    assert (
        smtp.messages[0]
        .message["Subject"]
        .startswith("[FIRING] CRITICAL: Sereno test notification: TEST:")
    )
    only = run_sereno("notify-test", "--config", config, "hook")
    assert (only.returncode, only.stdout) == (0, "hook (webhook): accepted\n")
    unknown = run_sereno("notify-test", "--config", config, "pager")
    assert unknown.returncode == 2
    assert "no receiver is named 'pager' (receivers: hook, mail, down)" in unknown.stderr
    shortcut = run_sereno("notify-test", "--webhook", http_receiver.url)
    assert (shortcut.returncode, shortcut.stdout) == (0, "webhook (webhook): accepted\n")
    assert run_sereno("notify-test").stderr.endswith(
        "no receiver to test: give --config FILE or --webhook URL\n"
    )


def test_each_kind_of_rule_has_a_default_summary() -> None:
    absent = AbsentAlert("silent", "HIGH", T0, "web7", "web", T0 - 125, 185)
    majority = MajorityAlert(LOAD, "HIGH", T0, "Load5mAvg", 10.2, "web", "4.0", ["a", "b"], 2, 3)
    server = ServerAlert(DISK, "MEDIUM", T0, "DiskUsedPercentage", 0.93, "web1", "web")
    assert [summarize(alert, None) for alert in (server, majority, absent)] == [
        "DiskUsedPercentage is 0.93 on web1 (web)",
        "Load5mAvg is up to 10.2 on 2 of the 3 active servers of web (threshold 4.0)",
        "web7 (web) has sent nothing for 185s",
    ]
    assert summarize(server, "{server}: disk at {value:.0%}") == "web1: disk at 93%"


def test_an_email_receivers_files_must_be_there_and_login_needs_both_halves() -> None:
    assert problems(
        f"""
receivers:
  - {{name: m, type: email, smarthost: "mail:587", from: a@example.com, to: [b@example.com],
     username: sereno, password_file: /nonexistent/smtp-password}}
  - {{name: n, type: email, smarthost: "mail:587", from: a@example.com, to: [b@example.com],
     ca_file: /nonexistent/ca.pem, password_file: {SAMPLE}}}
"""
    ) == [
        "sereno.yaml:4:39: receiver 'm': key 'password_file': cannot read "
        "'/nonexistent/smtp-password'",
        "sereno.yaml:6:15: receiver 'n': key 'ca_file': cannot read '/nonexistent/ca.pem'",
        "sereno.yaml:6:51: receiver 'n': 'username' and 'password_file' go together",
    ]


def test_a_receiver_that_asks_to_wait_is_left_alone_that_long(
    outbox_with: Callable[[int, str], NoticeOutbox], http_receiver: HttpReceiver
) -> None:
    http_receiver.answer(429, retry_after="1")  # Slack's way to say: too many
    outbox = outbox_with(1, "chat")
    spec = ReceiverSpec("chat", "slack", http_receiver.url, timing=FAST)
    delivery = start_delivery(outbox, spec, [])
    http_receiver.wait_for(lambda r: len(r.requests) >= 1)
    http_receiver.answer(200)
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 1)
    delivery.stop()
    first, second = (request.received_at for request in http_receiver.requests)
    assert second - first >= 1.0  # not FAST's 20 ms


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    assert retry_after("120") == 120
    in_a_minute = retry_after(format_datetime(datetime.now(timezone.utc) + timedelta(minutes=1)))
    assert in_a_minute is not None and 55 < in_a_minute <= 60
    assert retry_after("soon") is None
    assert retry_after(None) is None
