"""The fleet on its own: evaluated minutes given with invented times and the alerts the rules
found in them, and what the fleet shows after each."""

from __future__ import annotations

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert, ServerAlert
from sereno.engine.windows import Window
from sereno.events.schema import Event
from sereno.live.fleet import Fleet, FleetView, Reading, ServerSeen
from sereno.rules.rulefmt import parse_rules

T0 = 1476057600  # a minute's start
RULES = parse_rules(
    """
severities: {HIGH: {}}
rules:
  - name: disk
    severity: HIGH
    condition: component == "Disk" and value > 0.9
  - name: load
    severity: HIGH
    condition: component == "Load" and value > 4
    majority: true
    threshold: "4"
  - name: silent
    severity: HIGH
    condition: component == "Load"
    absent: 5m
""",
    "fleet rules",
).rules
EVERY_COMPONENT = parse_rules(
    """
severities: {HIGH: {}}
rules:
  - name: anything high
    severity: HIGH
    condition: value > 100
    majority: true
    threshold: "100"
""",
    "every component",
).rules


def sample(
    server: str, component: str, value: float, at: float, active: bool = True, service: str = "S"
) -> Event:
    return Event(server, service, component, value, at, active)


def minute(start: int, *events: Event) -> Window:
    window = Window(start)
    for event in events:
        window.add(event)
    return window


def disk_alert(server: str, value: float, at: float) -> ServerAlert:
    return ServerAlert("disk", "HIGH", at, "Disk", value, server, "S")


def load_alert(start: int, servers: list[str], active: int) -> MajorityAlert:
    return MajorityAlert("load", "HIGH", start, "Load", 5.0, "S", "", servers, len(servers), active)


def fed(fleet: Fleet, *minutes: tuple[Window, list[Alert]]) -> FleetView:
    for window, alerts in minutes:
        fleet.add(window, alerts)
    return fleet.view()


def test_nothing_evaluated_is_an_empty_fleet() -> None:
    assert Fleet(RULES).view() == FleetView(None, 120.0, ())


def test_each_server_shows_its_latest_values_of_the_components_the_rules_read() -> None:
    window = minute(
        T0,
        sample("a", "Disk", 0.5, T0 + 5),
        sample("a", "Disk", 0.95, T0 + 40),  # the latest of the minute
        sample("a", "Load", 3.0, T0 + 10),
        sample("a", "Memory", 7.0, T0 + 50, active=False),  # no rule reads it: not shown
        sample("b", "Load", 1.0, T0 + 20, active=False),
    )
    view = fed(Fleet(RULES), (window, [disk_alert("a", 0.95, T0 + 40)]))
    assert view == FleetView(
        T0 + 60,
        120.0,
        (
            ServerSeen(
                "S",
                "a",
                T0 + 40,  # its latest report of a component the rules read
                False,  # as its latest event says
                False,
                (Reading("Disk", 0.95, T0 + 40, ("disk",)), Reading("Load", 3.0, T0 + 10, ())),
            ),
            ServerSeen("S", "b", T0 + 20, False, False, (Reading("Load", 1.0, T0 + 20, ()),)),
        ),
    )


def test_a_majority_alert_covers_the_rules_components_of_its_matched_servers_only() -> None:
    window = minute(
        T0,
        sample("a", "Load", 5.0, T0 + 1),
        sample("b", "Load", 6.0, T0 + 2),
        sample("c", "Load", 1.0, T0 + 3),
        sample("c", "Disk", 0.2, T0 + 3),
    )
    view = fed(Fleet(RULES), (window, [load_alert(T0, ["a", "b"], 3)]))
    readings = {seen.server: seen.readings for seen in view.servers}
    assert readings == {
        "a": (Reading("Load", 5.0, T0 + 1, ("load",)),),
        "b": (Reading("Load", 6.0, T0 + 2, ("load",)),),
        "c": (Reading("Disk", 0.2, T0 + 3, ()), Reading("Load", 1.0, T0 + 3, ())),
    }


def test_a_rule_that_reads_every_component_covers_each_of_them() -> None:
    window = minute(T0, sample("a", "Load", 500, T0 + 1), sample("a", "Disk", 200, T0 + 2))
    alert = MajorityAlert("anything high", "HIGH", T0, "Load", 500, "S", "", ["a"], 1, 1)
    [seen] = fed(Fleet(EVERY_COMPONENT), (window, [alert])).servers
    assert seen.readings == (
        Reading("Disk", 200, T0 + 2, ("anything high",)),
        Reading("Load", 500, T0 + 1, ("anything high",)),
    )


def test_matches_are_those_of_the_latest_minute_and_values_the_latest_seen() -> None:
    first = minute(T0, sample("a", "Disk", 0.95, T0 + 5), sample("b", "Disk", 0.1, T0 + 5))
    second = minute(T0 + 60, sample("b", "Disk", 0.2, T0 + 65))
    view = fed(Fleet(RULES), (first, [disk_alert("a", 0.95, T0 + 5)]), (second, []))
    assert [seen.readings for seen in view.servers] == [
        (Reading("Disk", 0.95, T0 + 5, ()),),  # a sent nothing in the latest minute
        (Reading("Disk", 0.2, T0 + 65, ()),),
    ]
    assert view.evaluated_before == T0 + 120


def test_a_silence_alert_covers_its_servers_components_in_rule_order() -> None:
    window = minute(T0, sample("a", "Load", 9.0, T0 + 5))
    silent = AbsentAlert("silent", "HIGH", T0, "a", "S", T0 - 400, 460)
    view = fed(Fleet(RULES), (window, [silent, load_alert(T0, ["a"], 1)]))
    assert view.servers[0].readings == (Reading("Load", 9.0, T0 + 5, ("load", "silent")),)


def test_a_server_is_quiet_once_it_has_sent_nothing_for_longer_than_quiet_after() -> None:
    fleet = Fleet(RULES, quiet_after=120)
    fleet.add(minute(T0, sample("a", "Load", 1, T0 + 30), sample("b", "Load", 1, T0 + 30)), [])
    for start in (T0 + 60, T0 + 120):
        fleet.add(minute(start, sample("b", "Load", 1, start + 30)), [])
    # evaluated before T0 + 180: a's report at T0 + 30 is 150 s old
    assert [(s.server, s.quiet) for s in fleet.view().servers] == [("a", True), ("b", False)]


def test_a_report_exactly_quiet_after_old_is_not_quiet_yet() -> None:
    fleet = Fleet(RULES, quiet_after=120)
    fleet.add(minute(T0, sample("a", "Load", 1, T0 + 0)), [])
    fleet.add(minute(T0 + 60, sample("b", "Load", 1, T0 + 61)), [])
    assert [(s.server, s.quiet) for s in fleet.view().servers] == [("a", False), ("b", False)]


def test_servers_not_heard_of_for_a_day_are_forgotten() -> None:
    fleet = Fleet(RULES)
    fleet.add(minute(T0, sample("a", "Load", 1, T0 + 30)), [])
    day = 86_400
    fleet.add(minute(T0 + day - 60, sample("b", "Load", 1, T0 + day - 30)), [])
    assert [seen.server for seen in fleet.view().servers] == ["a", "b"]  # 23h59m30s old
    fleet.add(minute(T0 + day, sample("b", "Load", 1, T0 + day + 1)), [])
    assert [seen.server for seen in fleet.view().servers] == ["b"]


def test_servers_are_listed_by_service_then_server() -> None:
    window = minute(
        T0,
        sample("z", "Load", 1, T0 + 1, service="A"),
        sample("b", "Load", 1, T0 + 1, service="B"),
        sample("a", "Load", 1, T0 + 1, service="B"),
    )
    view = fed(Fleet(RULES), (window, []))
    assert [(s.service, s.server) for s in view.servers] == [("A", "z"), ("B", "a"), ("B", "b")]


def test_new_rules_change_the_components_read_from_then_on() -> None:
    fleet = Fleet(RULES)
    fleet.add(minute(T0, sample("a", "Memory", 5, T0 + 1)), [])
    fleet.use(EVERY_COMPONENT)
    fleet.add(minute(T0 + 60, sample("a", "Memory", 6, T0 + 61)), [])
    assert fleet.view().servers[0].readings == (Reading("Memory", 6, T0 + 61, ()),)


def test_a_view_stays_as_it_was_when_the_fleet_moves_on() -> None:
    fleet = Fleet(RULES)
    fleet.add(minute(T0, sample("a", "Load", 1, T0 + 1)), [])
    before = fleet.view()
    fleet.add(minute(T0 + 60, sample("a", "Load", 2, T0 + 61)), [])
    assert before.servers[0].readings == (Reading("Load", 1, T0 + 1, ()),)
