"""What receivers are told of the rules' controls: the notices planned from the engine's changes
over the controls example, their titles, texts and annotations, and Alertmanager's view of a
level change. Expected texts are written from the example's events (see the README's section on
the controls), not captured."""

from __future__ import annotations

import msgspec

from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode
from sereno.engine.windows import Window, Windows, window_start
from sereno.events.reader import EventReader
from sereno.events.schema import Event, event_type
from sereno.notify.alertmanager import alertmanager_alerts
from sereno.notify.config import NotifyConfig, ReceiverSpec
from sereno.notify.matchers import parse_matcher
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.silencing import Silences
from sereno.rules.rulefmt import load_rules, parse_rules
from sereno.serve.answers import OpenAlert

from conftest import REPO, event

RULES = load_rules(REPO / "examples" / "controls.yaml")
EVENTS = REPO / "examples" / "controls_events.jsonl"
T0 = 1476057600
M = 60


def changes_of_the_example() -> tuple[list[Episode], Engine]:
    changes: list[Episode] = []
    engine = Engine(RULES, lambda *_: None, on_change=changes.append)
    with EVENTS.open("rb") as stream:
        events = [
            event
            for batch in EventReader(stream, "events", lambda *_: None).batches()
            for event in batch.events
        ]
    for _ in engine.run(events, Windows(0.0), lambda e: None):
        pass
    return changes, engine


def notices() -> list[Notice]:
    config = NotifyConfig("test", (ReceiverSpec("hook", "webhook", "http://127.0.0.1:9"),))
    return [notice for _, notice in Planner(config, RULES).for_changes(changes_of_the_example()[0])]


def told(server: str) -> list[tuple[str, str]]:
    return [(n.title, n.text) for n in notices() if n.server == server]


def test_a_level_change_is_told_as_one() -> None:
    assert told("web01") == [
        ("[FIRING] WARNING: Disk filling up", "DiskUsedPercentage is 0.9 on web01 (Shop)"),
        (
            "[ESCALATED] CRITICAL: Disk filling up",
            "DiskUsedPercentage is 0.97 on web01 (Shop) - escalated from WARNING",
        ),
        (
            "[DE-ESCALATED] WARNING: Disk filling up",
            "DiskUsedPercentage is 0.9 on web01 (Shop) - de-escalated from CRITICAL",
        ),
        (
            "[RESOLVED] WARNING: Disk filling up",
            "DiskUsedPercentage is 0.9 on web01 (Shop) - recovered to 0.79, resolved after 5m",
        ),
    ]


def test_alertmanager_sees_a_level_change_end_under_the_old_severity() -> None:
    [escalated] = [n for n in notices() if n.reason == "escalated"]
    before, after = alertmanager_alerts(escalated)
    assert (before["labels"], before["endsAt"]) == (
        {**escalated.labels, "severity": "WARNING"},
        "2016-10-10T00:02:00Z",
    )
    assert after["labels"] == {**escalated.labels, "severity": "CRITICAL"}
    assert "endsAt" not in after


def test_no_data_and_flapping_are_told_once_each_way() -> None:
    assert told("web02")[1] == (
        "[NO DATA] WARNING: Disk filling up",
        "DiskUsedPercentage is 0.9 on web02 (Shop) - no data since 2016-10-10 00:02 UTC",
    )
    flaps = [(n.title, n.text) for n in notices() if n.reason.endswith("flapping")]
    assert flaps == [
        (
            "[FLAPPING] HIGH: Error rate high",
            "ErrorRate is 0.1 on api01 (Api) - flapping (firing now): not told change by change",
        ),
        (
            "[STABLE] HIGH: Error rate high",
            "ErrorRate is 0.1 on api01 (Api) - stopped flapping, firing now",
        ),
    ]


def test_annotations_say_the_change_and_a_majoritys_servers() -> None:
    [overloaded, _] = [n for n in notices() if n.rule == "Service overloaded"]
    annotations = overloaded.annotations
    assert (annotations["change"], annotations["state"]) == ("fired", "firing")
    assert (annotations["matched_servers"], annotations["unmatched_servers"]) == ("app01", "app02")


def test_open_alerts_in_the_api_carry_the_controls_marks() -> None:
    _, engine = changes_of_the_example()
    shown = {
        alert.server or alert.service: alert
        for alert in (OpenAlert.of(e, {}) for e in engine.lifecycle.still_open())
    }
    assert (shown["web02"].state, shown["web02"].no_data_since) == ("no data", T0 + 2 * M)
    assert (shown["web02"].notified, shown["web02"].flapping) == (True, False)
    assert msgspec.json.decode(msgspec.json.encode(shown["api01"]))["flapping"] is False


def reminders(episode: Episode, start: int) -> list[Notice]:
    spec = ReceiverSpec("hook", "webhook", "http://127.0.0.1:9")
    planner = Planner(NotifyConfig("test", (spec,)), RULES)
    interval = int(spec.timing.repeat_interval)
    return [n for _, n in planner.repeats([episode], start + interval, start + interval - M)]


def test_reminders_count_from_the_latest_notice_that_it_fires_and_skip_muted_alerts() -> None:
    _, engine = changes_of_the_example()
    [no_data] = [e for e in engine.firing() if e.key.server == "web02"]
    assert no_data.notified_at == T0 + M  # told it fired in minute 1
    [reminder] = reminders(no_data, T0 + M)
    assert reminder.text.endswith("- no data since 2016-10-10 00:02 UTC")
    escalated = msgspec.structs.replace(no_data, notified_at=T0 + 3 * M)  # as after a rise
    assert reminders(escalated, T0 + M) == []
    assert len(reminders(escalated, T0 + 3 * M)) == 1
    assert reminders(msgspec.structs.replace(no_data, flapping=True), T0 + M) == []
    assert reminders(msgspec.structs.replace(no_data, inhibited=True), T0 + M) == []
    assert reminders(msgspec.structs.replace(no_data, notified_at=None), T0 + M) == []


def test_an_events_extra_fields_that_rules_read_are_labels_to_match_and_group_on() -> None:
    rules = parse_rules(
        """
severities: {HIGH: {}}
rules:
  - name: disk
    severity: HIGH
    condition: component == "Disk" and value > 0.9 and team != "lab"
""",
        "rules.yaml",
    )
    engine = Engine(rules, lambda *_: None)
    raw = event("web1", "web", "Disk", 0.95, T0, team="payments", dc="eu", shard=7)
    decoded = msgspec.convert(raw, event_type(rules.fields))
    [alert] = engine.lifecycle.update(engine.evaluate_window(window_of([decoded])))
    assert alert.labels == {"team": "payments"}  # type: ignore[union-attr]  # what rules read
    silences = Silences(clock=lambda: 1e9)
    silences.add([parse_matcher("team=payments")], 2e9, "ana", "payments' maintenance")
    [fired] = engine.firing()
    notice = Planner(NotifyConfig("t"), rules).notice(fired, "fired", T0)
    assert notice.labels["team"] == "payments"
    assert Planner(NotifyConfig("t"), rules, silences).silenced_by(fired) != []


def window_of(events: list[Event]) -> Window:
    window = Window(window_start(events[0].timestamp))
    for one in events:
        window.add(one)
    return window
