"""Windows, rules and the engine, against alerts worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sereno.engine.alerts import Alert, MajorityAlert, ServerAlert
from sereno.engine.engine import Engine
from sereno.engine.windows import Window, Windows, window_start
from sereno.events.schema import Event
from sereno.rules.conditions import ConditionError
from sereno.rules.rulefmt import RuleSet, RuleSpec, load_default_rules, parse_rules

from conftest import event

T0 = 1476057600  # a minute boundary


def ev(**fields: Any) -> Event:
    return Event(**event(**fields))


def measurement(component: str) -> Callable[..., Event]:
    """A maker of `component` events: `maker(server, value, ts=T0, active=True, service="S")`."""

    def make(
        server: str, value: float, ts: float = T0, active: bool = True, service: str = "S"
    ) -> Event:
        return ev(
            server=server,
            service=service,
            component=component,
            value=value,
            timestamp=ts,
            active=active,
        )

    return make


load = measurement("Load5mAvg")
disk = measurement("DiskUsedPercentage")


def run(events: list[Event], ruleset: RuleSet | None = None) -> list[Alert]:
    engine = Engine(ruleset or load_default_rules(), on_condition_error=_fail)
    late: list[Event] = []
    alerts = [a for batch in engine.run(events, Windows(), late.append) for a in batch]
    assert late == []
    return alerts


def _fail(spec: RuleSpec, event: Event, error: ConditionError) -> None:
    raise AssertionError(f"unexpected condition error: {error}")


def majority(ts: int, value: float, service: str, servers: list[str], active: int) -> MajorityAlert:
    return MajorityAlert(
        rule="5 min load average exceeds 4.0",
        severity="HIGH",
        timestamp=ts,
        component="Load5mAvg",
        value=value,
        service=service,
        threshold="4.0",
        matched_servers=servers,
        matched=len(servers),
        active=active,
    )


def disk_alert(ts: float, value: float, server: str, service: str = "S") -> ServerAlert:
    return ServerAlert(
        rule="Disk consumption exceeds 90%",
        severity="MEDIUM",
        timestamp=ts,
        component="DiskUsedPercentage",
        value=value,
        server=server,
        service=service,
    )


@pytest.mark.parametrize(
    ("timestamp", "start"),
    [(T0, T0), (T0 + 59, T0), (T0 + 59.999, T0), (T0 + 60, T0 + 60), (-1, -60), (0, 0)],
)
def test_windows_are_minutes_aligned_to_the_epoch(timestamp: float, start: int) -> None:
    assert window_start(timestamp) == start


def test_the_latest_sample_of_a_server_and_component_counts() -> None:
    window = Window(T0)
    window.add(disk("a", 0.95, T0 + 10))
    window.add(disk("a", 0.50, T0 + 40))
    window.add(disk("a", 0.99, T0 + 20))  # arrives last but is older
    assert window.latest[("a", "DiskUsedPercentage")].value == 0.50


def test_disk_rule_is_strictly_above_and_for_active_servers_only() -> None:
    alerts = run([disk("a", 0.9), disk("b", 0.91, T0 + 1), disk("c", 0.99, T0 + 2, active=False)])
    assert alerts == [disk_alert(T0 + 1, 0.91, "b")]


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        # 2 of 3 active servers above 4.0: more than half
        ([("a", 5.0, True), ("b", 4.5, True), ("c", 1.0, True)], (5.0, ["a", "b"], 3)),
        # exactly 4.0 is not above 4.0
        ([("a", 4.0, True), ("b", 4.0, True), ("c", 9.0, True)], None),
        # 1 of 2 is half, not a majority
        ([("a", 6.0, True), ("b", 1.0, True)], None),
        # active/passive: the passive server is in neither count, so 1 of 1 alerts
        ([("a", 6.5, True), ("b", 0.2, False)], (6.5, ["a"], 1)),
        # an overloaded passive server is not counted as matched
        ([("a", 1.0, True), ("b", 9.0, False)], None),
        # no active server at all: nothing to alert on
        ([("a", 9.0, False)], None),
    ],
)
def test_majority_rule(
    loads: list[tuple[str, float, bool]], expected: tuple[float, list[str], int] | None
) -> None:
    alerts = run(
        [load(name, value, T0 + i, active) for i, (name, value, active) in enumerate(loads)]
    )
    if expected is None:
        assert alerts == []
    else:
        value, servers, active = expected
        assert alerts == [majority(T0, value, "S", servers, active)]


def test_servers_that_only_sent_other_components_still_count_as_active() -> None:
    # b sent only its disk: it is one of the 3 active servers, so 1 of 3 is not a majority
    alerts = run([load("a", 5.0), disk("b", 0.1), load("c", 5.0, active=False)])
    assert alerts == []


def test_majority_is_computed_per_service_and_per_window() -> None:
    events = [
        load("a", 5.0, T0, service="X"),
        load("b", 5.0, T0 + 1, service="Y"),
        load("c", 1.0, T0 + 2, service="Y"),
        load("a", 5.0, T0 + 60, service="X"),
    ]
    assert run(events) == [
        majority(T0, 5.0, "X", ["a"], 1),
        majority(T0 + 60, 5.0, "X", ["a"], 1),
    ]


def test_alerts_are_ordered_by_time_then_rule_then_service_then_server() -> None:
    events = [
        disk("z", 0.95, T0 + 5, service="B"),
        disk("y", 0.95, T0 + 5, service="A"),
        disk("x", 0.95, T0 + 5, service="A"),
        load("y", 7.0, T0 + 3, service="A"),
        load("x", 6.0, T0 + 3, service="A"),
        load("z", 7.0, T0 + 3, service="B"),
        disk("w", 0.95, T0 + 1, service="B"),
        load("w", 7.5, T0 + 1, service="B"),
    ]
    assert run(events) == [
        majority(T0, 7.0, "A", ["x", "y"], 2),
        majority(T0, 7.5, "B", ["w", "z"], 2),
        disk_alert(T0 + 1, 0.95, "w", "B"),
        disk_alert(T0 + 5, 0.95, "x", "A"),
        disk_alert(T0 + 5, 0.95, "y", "A"),
        disk_alert(T0 + 5, 0.95, "z", "B"),
    ]


def test_rule_order_decides_between_alerts_of_the_same_time() -> None:
    ruleset = parse_rules(
        """
severities: {HIGH: {color: red}}
rules:
  - {name: second, severity: HIGH, condition: value > 1}
  - {name: first, severity: HIGH, condition: value > 2}
""",
        "r.yaml",
    )
    alerts = run([load("a", 5.0)], ruleset)
    assert [a.rule for a in alerts] == ["second", "first"]


def test_a_rule_may_ask_about_passive_servers() -> None:
    ruleset = parse_rules(
        """
severities: {LOW: {}}
rules:
  - {name: passive disk, severity: LOW, condition: not active and value > 0.5}
""",
        "r.yaml",
    )
    alerts = run([disk("a", 0.9, active=False), disk("b", 0.9)], ruleset)
    assert [(a.rule, getattr(a, "server", None)) for a in alerts] == [("passive disk", "a")]


def test_windows_close_on_the_watermark_and_late_events_are_handed_back() -> None:
    windows = Windows(allowed_lateness=30)
    late: list[int] = []

    def put(event: Event) -> list[int]:
        """The starts of the windows that adding `event` closes."""
        return [window.start for window in windows.extend([event], late.append)]

    assert put(load("a", 1.0, T0 + 50)) == []
    assert put(load("a", 1.0, T0 + 89)) == []  # watermark T0 + 89: the first minute is open
    assert put(load("b", 1.0, T0 + 10)) == []  # out of order, but still in time
    assert put(load("a", 1.0, T0 + 90)) == [T0]  # watermark T0 + 90
    assert late == []
    assert put(load("c", 1.0, T0 + 30)) == []  # its minute was evaluated: late
    assert late == [0]
    assert [w.start for w in windows.close_all()] == [T0 + 60]


def test_the_engine_reports_late_events_and_does_not_evaluate_them() -> None:
    engine = Engine(load_default_rules(), on_condition_error=_fail)
    late: list[Event] = []
    events = [disk("a", 0.95, T0), disk("a", 0.95, T0 + 200), disk("b", 0.99, T0 + 5)]
    alerts = [a for batch in engine.run(events, Windows(), late.append) for a in batch]
    assert alerts == [disk_alert(T0, 0.95, "a"), disk_alert(T0 + 200, 0.95, "a")]
    assert late == [events[2]]


def test_condition_errors_are_handed_to_the_caller_as_non_matches() -> None:
    ruleset = parse_rules(
        "severities: {LOW: {}}\nrules:\n  - {name: r, severity: LOW, condition: region > 3}\n",
        "r.yaml",
    )
    errors: list[tuple[str, str]] = []
    engine = Engine(ruleset, lambda spec, event, error: errors.append((spec.name, event.server)))
    alerts = list(engine.run([ev(server="a")], Windows(), lambda event: None))
    assert alerts == [[]]
    assert errors == [("r", "a")]


# --- property: the engine agrees with a plain reading of the definitions ---------------------


def reference_alerts(events: list[Event]) -> list[tuple[object, ...]]:
    """Alerts computed the obvious way from the whole input: DESIGN's words, no streaming."""
    latest: dict[tuple[int, str, str], Event] = {}
    for e in events:  # in input order, so a later sample of the same second wins
        key = (window_start(e.timestamp), e.server, e.component)
        if key not in latest or e.timestamp >= latest[key].timestamp:
            latest[key] = e
    found: list[tuple[object, ...]] = []
    minutes = sorted({minute for minute, _, _ in latest})
    for minute in minutes:
        samples = [e for (m, _, _), e in latest.items() if m == minute]
        for e in samples:
            if e.component == "DiskUsedPercentage" and e.value > 0.9 and e.active:
                found.append((e.timestamp, 0, e.service, e.server, e.value))
        for service in sorted({e.service for e in samples}):
            newest: dict[str, Event] = {}
            for e in sorted(
                (e for e in samples if e.service == service), key=lambda e: e.timestamp
            ):
                newest[e.server] = e
            active = {server for server, e in newest.items() if e.active}
            matched = {
                e.server: e.value
                for e in samples
                if e.service == service
                and e.server in active
                and e.component == "Load5mAvg"
                and e.value > 4.0
                and e.active
            }
            if active and len(matched) / len(active) > 0.5:
                found.append((minute, 1, service, "", max(matched.values())))
    return sorted(found, key=lambda a: (a[0], a[1], a[2], a[3]))


def as_tuple(alert: Alert) -> tuple[object, ...]:
    rank = 0 if isinstance(alert, ServerAlert) else 1
    return (alert.timestamp, rank, alert.service, getattr(alert, "server", ""), alert.value)


SERVERS = [("a", "X"), ("b", "X"), ("c", "X"), ("d", "Y"), ("e", "Y")]


@st.composite
def fleets(draw: st.DrawFn) -> list[Event]:
    """A few minutes of a small fleet, in time order, with duplicates and passive servers."""
    events = []
    for minute in range(draw(st.integers(1, 4))):
        for server, service in draw(st.lists(st.sampled_from(SERVERS), max_size=8)):
            events.append(
                ev(
                    server=server,
                    service=service,
                    component=draw(st.sampled_from(["Load5mAvg", "DiskUsedPercentage"])),
                    value=draw(st.sampled_from([0.5, 0.9, 0.95, 3.0, 4.0, 4.5, 9])),
                    timestamp=T0 + 60 * minute + draw(st.integers(0, 59)),
                    active=draw(st.booleans()),
                )
            )
    return sorted(events, key=lambda e: e.timestamp)


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_engine_agrees_with_a_plain_reading_of_the_rules(events: list[Event]) -> None:
    assert [as_tuple(alert) for alert in run(events)] == reference_alerts(events)


@st.composite
def shuffled_fleets(draw: st.DrawFn) -> list[Event]:
    """`fleets`, each minute's events in any order (the minutes still in turn, none late)."""
    events = draw(fleets())
    minutes = sorted({window_start(e.timestamp) for e in events})
    return [
        e
        for minute in minutes
        for e in draw(st.permutations([e for e in events if window_start(e.timestamp) == minute]))
    ]


@settings(max_examples=300, deadline=None)
@given(shuffled_fleets())
def test_the_latest_sample_counts_whatever_order_a_minute_comes_in(events: list[Event]) -> None:
    assert [as_tuple(alert) for alert in run(events)] == reference_alerts(events)


@settings(max_examples=200, deadline=None)
@given(shuffled_fleets())
def test_alerts_are_the_same_whether_or_not_changes_are_tracked(events: list[Event]) -> None:
    """A batch run that only prints alerts of rules firing at once tracks no episode."""
    tracked = Engine(load_default_rules(), _fail)
    untracked = Engine(load_default_rules(), _fail, alerts_only=True)
    late: list[Event] = []
    assert list(tracked.run(events, Windows(), late.append)) == list(
        untracked.run(events, Windows(), late.append)
    )


MAJORITY_RULE = """
severities:
  HIGH: {}
rules:
  - name: load
    severity: HIGH
    condition: component == "Load5mAvg" and value > 4.0 and active
    threshold: "4.0"
    majority: true
"""


RECOVERS_NEVER = '    recover_when: component == "Load5mAvg" and value < -1\n'


@settings(max_examples=200, deadline=None)
@given(shuffled_fleets())
def test_a_majority_rule_finds_the_same_with_or_without_a_recovery_condition(
    events: list[Event],
) -> None:
    """A rule of one level without `recover_when` is evaluated on a path of its own."""
    plain = parse_rules(MAJORITY_RULE, "plain.yaml")
    recovering = parse_rules(MAJORITY_RULE + RECOVERS_NEVER, "recovering.yaml")
    found = []
    for ruleset in (plain, recovering):
        engine = Engine(ruleset, _fail)
        windows = Windows()
        closed = [*windows.extend(events, lambda index: None), *windows.close_all()]
        results = [engine.evaluate_window(window) for window in closed]
        found.append([(r.alerts, r.looked_at, r.unmatched) for r in results])
    assert found[0] == found[1]
