"""Alert lifecycle: pending, firing, resolved; `for:`; silence; episodes. Worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from sereno.engine.alerts import AbsentAlert, Alert, AlertKey, ServerAlert
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode, Lifecycle, State, WindowResult
from sereno.engine.windows import Windows
from sereno.events.schema import Event
from sereno.rules.rulefmt import RulesError, RuleSet, RuleSpec, parse_duration, parse_rules

from conftest import event

T0 = 1476057600
M = 60
KEY = AlertKey("disk", "S", "a")


def disk_alert(minute: int, value: float = 0.95) -> Alert:
    return ServerAlert("disk", "LOW", T0 + minute * M, "Disk", value, "a", "S")


def minute(number: int, matched: bool, looked_at: bool = True, value: float = 0.95) -> WindowResult:
    alerts = [disk_alert(number, value)] if matched else []
    return WindowResult(T0 + number * M, alerts, {KEY: value} if looked_at or matched else {})


def disk_rule(hold: int) -> tuple[RuleSpec, ...]:
    """The rule these alerts are of: `disk`, at LOW, with a `for:` of `hold` seconds."""
    text = f"""
severities: {{LOW: {{}}}}
rules:
  - name: disk
    severity: LOW
    condition: value > 0.9
    for: {hold}s
"""
    return parse_rules(text, "disk.yaml").rules


def run_lifecycle(minutes: list[WindowResult], hold: int = 0) -> tuple[list[int], Lifecycle]:
    """The minutes (numbers) in which the alert fired, and the lifecycle after them."""
    lifecycle = Lifecycle(disk_rule(hold), keep_resolved=True)
    fired = [(r.start - T0) // M for r in minutes if lifecycle.update(r)]
    return fired, lifecycle


def test_without_for_an_alert_fires_at_once_and_is_resolved_by_a_minute_without_a_match() -> None:
    fired, lifecycle = run_lifecycle([minute(0, True), minute(1, True), minute(2, False)])
    assert fired == [0, 1]
    [episode] = lifecycle.take_resolved()
    assert (episode.state, episode.started, episode.fired, episode.ended, episode.windows) == (
        State.RESOLVED,
        T0,
        T0,
        T0 + 2 * M,
        2,
    )
    assert lifecycle.still_open() == []


def test_a_minute_without_data_neither_raises_nor_resolves_a_firing_alert() -> None:
    fired, lifecycle = run_lifecycle(
        [minute(0, True), minute(1, False, looked_at=False), minute(2, True)]
    )
    assert fired == [0, 2]
    [episode] = lifecycle.still_open()
    assert (episode.state, episode.started, episode.windows) == (State.FIRING, T0, 2)


def test_for_holds_the_alert_pending_until_the_condition_held_that_long() -> None:
    fired, lifecycle = run_lifecycle([minute(n, True) for n in range(4)], hold=3 * M)
    assert fired == [2, 3]
    [episode] = lifecycle.still_open()
    assert (episode.started, episode.fired) == (T0, T0 + 2 * M)


@pytest.mark.parametrize(
    "reset",
    [minute(1, False), minute(1, False, looked_at=False)],
    ids=["a minute without a match", "a minute without data"],
)
def test_for_starts_again_after_a_minute_that_breaks_it(reset: WindowResult) -> None:
    minutes = [minute(0, True), reset, minute(2, True), minute(3, True), minute(4, True)]
    fired, lifecycle = run_lifecycle(minutes, hold=3 * M)
    assert fired == [4]
    assert lifecycle.still_open()[0].started == T0 + 2 * M


def test_for_starts_again_after_a_minute_missing_altogether() -> None:
    fired, _ = run_lifecycle([minute(0, True), minute(2, True), minute(3, True)], hold=2 * M)
    assert fired == [3]


def test_a_pending_alert_that_never_fires_leaves_no_episode() -> None:
    fired, lifecycle = run_lifecycle([minute(0, True), minute(1, False)], hold=5 * M)
    assert fired == []
    assert (lifecycle.take_resolved(), lifecycle.still_open()) == ([], [])


def test_the_peak_is_the_highest_value_of_the_episode() -> None:
    _, lifecycle = run_lifecycle(
        [minute(0, True, value=0.92), minute(1, True, value=0.99), minute(2, True, value=0.95)]
    )
    [episode] = lifecycle.still_open()
    assert (episode.peak, episode.last.value) == (0.99, 0.95)


# --- through the engine, from events ---------------------------------------------------------

RULES = """
severities: {LOW: {}, HIGH: {}}
rules:
  - name: disk
    severity: LOW
    condition: component == "Disk" and value > 0.9 and active
    for: 2m
  - name: load
    severity: HIGH
    condition: component == "Load" and value > 4 and active
    threshold: 4
    majority: true
  - name: silent
    severity: HIGH
    absent: 3m
"""


def ev(server: str, component: str, value: float, at: float, **fields: Any) -> Event:
    fields.setdefault("service", "S")
    return Event(**event(server=server, component=component, value=value, timestamp=at, **fields))


def engine_run(events: list[Event], rules: str = RULES) -> tuple[list[Alert], list[Episode]]:
    ruleset: RuleSet = parse_rules(rules, "rules.yaml")
    engine = Engine(ruleset, lambda *_: pytest.fail("condition error"), keep_episodes=True)
    late: list[Event] = []
    alerts = [a for batch in engine.run(events, Windows(), late.append) for a in batch]
    return alerts, engine.episodes()


def test_for_in_a_rules_file_delays_the_alert() -> None:
    events = [ev("a", "Disk", v, T0 + n * M) for n, v in enumerate([0.95, 0.95, 0.95, 0.5])]
    alerts, episodes = engine_run(events)
    assert [(a.rule, a.timestamp) for a in alerts] == [("disk", T0 + M), ("disk", T0 + 2 * M)]
    [episode] = episodes
    assert (episode.started, episode.fired, episode.ended) == (T0, T0 + M, T0 + 3 * M)


def test_a_majority_episode_lasts_while_most_active_servers_match() -> None:
    loads = {"a": [5, 5, 5, 1], "b": [5, 1, 5, 1], "c": [1, 5, 1, 1]}
    events = [
        ev(server, "Load", value, T0 + n * M + 5)
        for server, values in loads.items()
        for n, value in enumerate(values)
    ]
    alerts, episodes = engine_run(events)
    assert [a.timestamp for a in alerts if a.rule == "load"] == [T0, T0 + M, T0 + 2 * M]
    [episode] = [e for e in episodes if e.key.rule == "load"]
    assert (episode.key, episode.started, episode.ended, episode.windows) == (
        AlertKey("load", "S", ""),
        T0,
        T0 + 3 * M,
        3,
    )


def test_a_server_that_goes_silent_alerts_and_recovers_when_it_reports_again() -> None:
    events = [ev("b", "Load", 1, T0 + n * M) for n in range(8)]  # b keeps the minutes going
    events += [ev("a", "Load", 1, T0 + 10)]  # a reports once, then is silent until minute 6
    events += [ev("a", "Load", 1, T0 + 6 * M + 1)]
    events.sort(key=lambda e: e.timestamp)
    alerts, episodes = engine_run(events)
    silent = [a for a in alerts if isinstance(a, AbsentAlert)]
    # a's last event is at T0+10: by the end of minute 2 (T0+180) it has been silent 170 s,
    # by the end of minute 3 230 s, so minutes 3, 4 and 5 alert; in minute 6 it reports
    assert [(a.server, a.timestamp, a.last_seen) for a in silent] == [
        ("a", T0 + 3 * M, T0 + 10),
        ("a", T0 + 4 * M, T0 + 10),
        ("a", T0 + 5 * M, T0 + 10),
    ]
    [episode] = [e for e in episodes if e.key.rule == "silent"]
    assert (episode.key.server, episode.started, episode.ended) == ("a", T0 + 3 * M, T0 + 6 * M)
    assert episode.peak == 6 * M - 10


def test_a_passive_server_going_silent_is_not_an_alert() -> None:
    events = [ev("b", "Load", 1, T0 + n * M) for n in range(8)]
    events += [ev("p", "Load", 1, T0 + 10, active=False)]
    events.sort(key=lambda e: e.timestamp)
    alerts, _ = engine_run(events)
    assert [a for a in alerts if a.rule == "silent"] == []


def test_late_events_do_not_resolve_or_raise_anything() -> None:
    events = [
        ev("a", "Disk", 0.95, T0),
        ev("a", "Disk", 0.95, T0 + M),
        ev("a", "Disk", 0.95, T0 + 3 * M),  # closes minutes 0 and 1 (and 2 has no data)
        ev("a", "Disk", 0.50, T0 + M + 30),  # late: minute 1 was evaluated
    ]
    ruleset = parse_rules(RULES.replace("for: 2m", "for: 0s"), "rules.yaml")
    engine = Engine(ruleset, lambda *_: None, keep_episodes=True)
    late: list[Event] = []
    alerts = [a for batch in engine.run(events, Windows(), late.append) for a in batch]
    assert late == [events[3]]
    assert [a.timestamp for a in alerts if a.rule == "disk"] == [T0, T0 + M, T0 + 3 * M]
    [episode] = [e for e in engine.episodes() if e.key.rule == "disk"]
    assert (episode.state, episode.windows) == (State.FIRING, 3)


def test_out_of_order_events_within_the_lateness_count() -> None:
    events = [
        ev("a", "Disk", 0.95, T0 + 50),
        ev("a", "Disk", 0.95, T0 + M + 20),
        ev("a", "Disk", 0.50, T0 + 55),  # out of order, in time, and the latest of minute 0
    ]
    ruleset = parse_rules(RULES.replace("for: 2m", "for: 0s"), "rules.yaml")
    engine = Engine(ruleset, lambda *_: None, keep_episodes=True)
    late: list[Event] = []
    alerts = [a for batch in engine.run(events, Windows(), late.append) for a in batch]
    assert late == []
    assert [a.timestamp for a in alerts if a.rule == "disk"] == [T0 + M + 20]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("0s", 0), ("5", None), ("m", None)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("for: soon", "key 'for': expected a duration such as 90s, 5m or 1h, got 'soon'"),
        ("absent: 0s", "key 'absent': expected a duration such as 90s, 5m or 1h, got '0s'"),
        ("absent: 3m\n    majority: true", "an 'absent' rule cannot be a majority rule"),
    ],
)
def test_bad_lifecycle_keys_are_refused(rule: str, message: str) -> None:
    text = f"severities: {{LOW: {{}}}}\nrules:\n  - name: r\n    severity: LOW\n    {rule}\n"
    with pytest.raises(RulesError, match=message.replace("(", r"\(")) as raised:
        parse_rules(text, "r.yaml")
    assert "rule 'r'" in str(raised.value)


def test_two_matches_of_one_alert_in_a_minute_are_one_minute_of_its_episode() -> None:
    rules = RULES.replace('component == "Disk" and value > 0.9', "value > 0.9")
    events = [
        ev("a", component, 0.95, T0 + n * M + offset)
        for n in range(3)
        for offset, component in enumerate(["Disk", "Temp"])
    ]
    alerts, episodes = engine_run(events, rules)
    disk = [(a.timestamp, getattr(a, "component", "")) for a in alerts if a.rule == "disk"]
    assert disk == [
        (T0 + M, "Disk"),
        (T0 + M + 1, "Temp"),
        (T0 + 2 * M, "Disk"),
        (T0 + 2 * M + 1, "Temp"),
    ]
    [episode] = [e for e in episodes if e.key.rule == "disk"]
    assert (episode.started, episode.fired, episode.windows) == (T0, T0 + M, 3)


def test_each_change_of_state_is_told_once() -> None:
    changes: list[tuple[State, int]] = []
    lifecycle = Lifecycle(
        disk_rule(2 * M), on_change=lambda e: changes.append((e.state, e.windows))
    )
    for result in [minute(0, True), minute(1, True), minute(2, True), minute(3, False)]:
        lifecycle.update(result)
    assert changes == [(State.PENDING, 1), (State.FIRING, 2), (State.RESOLVED, 3)]


def test_an_alert_fired_early_is_carried_on_by_its_minute_not_told_twice() -> None:
    told: list[tuple[str, int]] = []
    lifecycle = Lifecycle(disk_rule(0), on_change=lambda e: told.append((e.state.value, e.windows)))
    lifecycle.fire_early(disk_alert(0), T0)
    assert told == [("firing", 1)]
    assert lifecycle.update(minute(0, matched=True)) == [disk_alert(0)]
    assert told == [("firing", 1)]
    assert lifecycle.still_open()[0].windows == 1


def test_an_alert_fired_early_is_resolved_if_its_minute_does_not_match() -> None:
    told: list[tuple[str, int, int | None]] = []
    lifecycle = Lifecycle(
        disk_rule(0), on_change=lambda e: told.append((e.state.value, e.started, e.ended))
    )
    lifecycle.fire_early(disk_alert(0), T0)
    lifecycle.update(minute(0, matched=False))
    assert told == [("firing", T0, None), ("resolved", T0, T0)]


def test_early_only_fires_what_for_lets_fire() -> None:
    lifecycle = Lifecycle(disk_rule(2 * M))
    lifecycle.fire_early(disk_alert(0), T0)
    assert lifecycle.still_open() == []  # pending is left to the minute's evaluation
    lifecycle.update(minute(0, matched=True))
    lifecycle.fire_early(disk_alert(1), T0 + M)
    [episode] = lifecycle.still_open()
    assert (episode.state, episode.started, episode.fired) == (State.FIRING, T0, T0 + M)
