"""The rules' controls in the engine: hysteresis, levels, missing data, flapping, quorum and
inhibition. Invented times, one value a minute per server; every expectation is worked out by
hand from the rules, minute by minute (minute n starts at T0 + 60 n)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import msgspec
import pytest

from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode, flap_share
from sereno.engine.windows import Windows
from sereno.events.schema import Event
from sereno.rules.conditions import parse_condition
from sereno.rules.rulefmt import Flapping, Level, OnMissing, Quorum, RuleSet, RuleSpec, Severity

from conftest import event

T0 = 1476057600
M = 60
SEVERITIES = {name: Severity(name, "", None) for name in ("LOW", "WARNING", "CRITICAL")}
DISK = "component == 'Disk' and value > 0.9"
LOAD = "component == 'Load' and value > 4.0"


def rule(
    name: str = "disk", condition: str = DISK, majority: bool = False, **controls: Any
) -> RuleSpec:
    base = RuleSpec(
        name, "", (Level(SEVERITIES["LOW"], parse_condition(condition)),), "x", majority
    )
    return dataclasses.replace(base, **controls)


def levels(*steps: tuple[str, str, int]) -> tuple[Level, ...]:
    return tuple(Level(SEVERITIES[name], parse_condition(text), hold) for name, text, hold in steps)


@dataclass
class Run:
    """What the engine did: each change as (minute, change, state, severity, notice), the
    minutes in which each alert had a firing alert line, and the episodes at the end."""

    changes: list[tuple[int, str, str, str, str | None]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    raw: list[Episode] = field(default_factory=list)

    def told(self) -> list[tuple[int, str]]:
        """The notices, as (minute, reason)."""
        return [(minute, tell) for minute, _, _, _, tell in self.changes if tell is not None]


def run(
    rules: list[RuleSpec], series: dict[str, str], component: str = "Disk", **extra: str
) -> Run:
    """Feed one value a minute per server (`_`: no sample that minute) of service S; the
    `extra` series are other servers' of service T, which keep the fleet's time moving."""
    result = Run()

    def changed(episode: Episode) -> None:
        minute = ((episode.changed_at or T0) - T0) // M
        change = (minute, episode.change.value, episode.state.value, episode.severity, episode.tell)
        result.changes.append(change)
        result.raw.append(episode)

    ruleset = RuleSet("test", tuple(SEVERITIES.values()), tuple(rules))
    engine = Engine(ruleset, lambda *_: None, keep_episodes=True, on_change=changed)
    events = [*samples(series, "S", component), *samples(extra, "T", "Other")]
    events.sort(key=lambda e: e.timestamp)
    for alerts in engine.run(events, Windows(0.0), lambda e: None):
        result.lines += [(int(alert.timestamp) - T0) // M for alert in alerts]
    result.episodes = engine.episodes()
    return result


def samples(series: dict[str, str], service: str, component: str) -> list[Event]:
    found = []
    for server, values in series.items():
        for minute, value in enumerate(values.split()):
            if value != "_":
                raw = event(server, service, component, float(value), T0 + minute * M + 5)
                found.append(msgspec.convert(raw, Event))
    return found


# --- hysteresis ----------------------------------------------------------------------------


def test_without_a_recovery_condition_the_first_minute_below_the_threshold_resolves() -> None:
    done = run([rule()], {"a": "0.95 0.85"})
    assert done.told() == [(0, "fired"), (1, "resolved")]


def test_recover_when_keeps_it_firing_until_the_recovery_condition_holds() -> None:
    spec = rule(recover_when=parse_condition("component == 'Disk' and value < 0.8"))
    done = run([spec], {"a": "0.95 0.85 0.85 0.75 0.95"})
    # 0.85 is neither above 0.9 nor below 0.8: still firing, but no alert line that minute
    assert done.told() == [(0, "fired"), (3, "resolved"), (4, "fired")]
    assert done.lines == [0, 4]
    first = done.episodes[0]
    assert (first.ended, first.recovered, first.ended_by) == (T0 + 3 * M, 0.75, "recovered")
    assert first.windows == 1


def test_a_match_between_keeps_the_same_episode_going() -> None:
    spec = rule(recover_when=parse_condition("value < 0.8"))
    done = run([spec], {"a": "0.95 0.85 0.95 0.7"})
    assert done.told() == [(0, "fired"), (3, "resolved")]
    [episode] = done.episodes
    assert (episode.windows, episode.started, episode.ended) == (2, T0, T0 + 3 * M)


def test_keep_firing_for_holds_it_that_long_after_the_last_matching_minute() -> None:
    done = run([rule(keep_firing_for=2 * M)], {"a": "0.95 0.5 0.5 0.5"})
    # the last match ends at minute 1; minute 3 starts 2 minutes after that
    assert done.told() == [(0, "fired"), (3, "resolved")]


def test_keep_firing_for_and_recover_when_both_must_let_it_go() -> None:
    spec = rule(keep_firing_for=2 * M, recover_when=parse_condition("value < 0.8"))
    done = run([spec], {"a": "0.95 0.75 0.75 0.85 0.75"})
    # minutes 1, 2: within keep_firing_for; 3: 0.85 has not recovered; 4: both hold
    assert done.told() == [(0, "fired"), (4, "resolved")]


# --- levels --------------------------------------------------------------------------------


def test_one_alert_moves_up_and_down_its_levels() -> None:
    steps = levels(("WARNING", "value > 0.8", 0), ("CRITICAL", "value > 0.95", 0))
    done = run([rule(levels=steps)], {"a": "0.85 0.97 0.97 0.85 0.5"})
    assert [(m, change, severity, tell) for m, change, _, severity, tell in done.changes] == [
        (0, "fired", "WARNING", "fired"),
        (1, "escalated", "CRITICAL", "escalated"),
        (3, "de-escalated", "WARNING", "de-escalated"),
        (4, "resolved", "WARNING", "resolved"),
    ]
    [episode] = done.episodes
    assert (episode.peak, episode.windows, episode.previous_severity) == (0.97, 4, "CRITICAL")


def test_escalation_restarts_the_reminders_de_escalation_does_not() -> None:
    steps = levels(("WARNING", "value > 0.8", 0), ("CRITICAL", "value > 0.95", 0))
    done = run([rule(levels=steps)], {"a": "0.85 0.97 0.85"})
    notified = [(episode.change.value, episode.notified_at) for episode in done.raw]
    assert notified == [("fired", T0), ("escalated", T0 + M), ("de-escalated", T0 + M)]


def test_each_level_has_its_own_for() -> None:
    steps = levels(("WARNING", "value > 0.8", 2 * M), ("CRITICAL", "value > 0.95", 0))
    assert run([rule(levels=steps)], {"a": "0.85 0.85 0.85"}).told() == [(1, "fired")]
    straight_to_critical = run([rule(levels=steps)], {"a": "0.97 0.85 0.85"})
    assert straight_to_critical.changes[:2] == [
        (0, "fired", "firing", "CRITICAL", "fired"),
        (1, "de-escalated", "firing", "WARNING", "de-escalated"),
    ]


def test_a_higher_level_must_hold_its_for_before_the_alert_moves_up() -> None:
    steps = levels(("WARNING", "value > 0.8", 0), ("CRITICAL", "value > 0.95", 2 * M))
    done = run([rule(levels=steps)], {"a": "0.85 0.97 0.97 0.97"})
    # CRITICAL holds from minute 1; its 2 minutes are up at the end of minute 2
    assert done.told() == [(0, "fired"), (2, "escalated")]


def test_a_majority_rule_is_at_the_level_a_quorum_of_its_servers_reach() -> None:
    steps = levels(("WARNING", "value > 4.0", 0), ("CRITICAL", "value > 8.0", 0))
    spec = rule("load", LOAD, majority=True, levels=steps)
    done = run([spec], {"a": "5 9 9", "b": "5 9 5", "c": "1 1 9"}, component="Load")
    # minute 2: a and c above 8 are two of three, b above 4 as well
    assert [(m, severity) for m, _, _, severity, _ in done.changes] == [
        (0, "WARNING"),
        (1, "CRITICAL"),
    ]
    [episode] = done.episodes
    assert episode.last.matched_servers == ["a", "c"]  # type: ignore[union-attr]
    assert episode.unmatched == ("b",)


# --- missing data --------------------------------------------------------------------------


def missing(policy: OnMissing) -> Run:
    spec = rule(on_missing=policy, missing_after=3 * M)
    return run([spec], {"a": "0.95 _ _ _ _ 0.95"}, other="1 1 1 1 1 1")


def test_on_missing_resolve_ends_the_alert_as_no_data() -> None:
    done = missing(OnMissing.RESOLVE)
    # last data in minute 0; minutes 1, 2, 3 without: at the end of minute 3, 3 minutes
    assert done.told() == [(0, "fired"), (3, "resolved"), (5, "fired")]
    first = done.episodes[0]
    assert (first.ended_by, first.no_data_since, first.recovered) == ("no data", T0 + M, None)


def test_on_missing_alert_is_a_state_of_its_own_until_data_comes_back() -> None:
    done = missing(OnMissing.ALERT)
    assert [(m, change, state, tell) for m, change, state, _, tell in done.changes] == [
        (0, "fired", "firing", "fired"),
        (3, "no data", "no data", "no data"),
        (5, "data back", "firing", "data back"),
    ]


def test_data_back_below_the_threshold_resolves_a_no_data_alert() -> None:
    spec = rule(on_missing=OnMissing.ALERT, missing_after=2 * M)
    done = run([spec], {"a": "0.95 _ _ 0.5"}, other="1 1 1 1")
    assert done.told() == [(0, "fired"), (2, "no data"), (3, "resolved")]


def test_on_missing_keep_keeps_it_firing_and_says_since_when() -> None:
    done = missing(OnMissing.KEEP)
    assert [(m, change, state, tell) for m, change, state, _, tell in done.changes] == [
        (0, "fired", "firing", "fired"),
        (3, "no data", "firing", None),
    ]
    [episode] = done.episodes
    assert (episode.state.value, episode.no_data_since) == ("firing", None)  # data is back


def test_by_default_an_alert_without_data_for_five_minutes_turns_no_data() -> None:
    done = run([rule()], {"a": "0.95 _ _ _ _ _"}, other="1 1 1 1 1 1")
    assert done.told() == [(0, "fired"), (5, "no data")]


def test_a_majority_alert_misses_data_when_its_service_sends_none() -> None:
    spec = rule("load", LOAD, majority=True, on_missing=OnMissing.RESOLVE, missing_after=2 * M)
    done = run([spec], {"a": "5 _ _", "b": "5 _ _"}, component="Load", other="1 1 1")
    assert done.told() == [(0, "fired"), (2, "resolved")]


# --- flapping ------------------------------------------------------------------------------


def test_nagios_weights_changes_from_1_25_newest_to_0_75_oldest() -> None:
    every_minute = 0b0101010101  # ten evaluations, each a change from the one before
    # nine changes, aged 0..8: 9 * 0.75 + 0.5 * (19 + 18 + ... + 11) / 19, over 20
    assert flap_share(every_minute, 10, 21) == pytest.approx((9 * 0.75 + 0.5 * 135 / 19) / 20)
    assert flap_share(every_minute, 9, 21) < 0.5 <= flap_share(every_minute, 10, 21)


def test_a_flapping_alert_is_told_when_it_starts_and_stops_flapping_not_in_between() -> None:
    spec = rule(flapping=Flapping(21, 0.5, 0.25))
    flapping = " ".join(["0.95 0.5"] * 6)  # minutes 0-11: fires, resolves, fires...
    done = run([spec], {"a": flapping + " " + " ".join(["0.95"] * 20)})
    # the tenth evaluation (minute 9) brings the share to 0.515. From minute 12 it fires
    # steadily and its twelve changes (into minutes 1-12) age out of the window of 20: at
    # minute 25 seven remain, aged 13-19 (0.290); at minute 26 six, aged 14-19: 0.245 < 0.25
    told = done.told()
    fires_and_resolves = [(minute, "resolved" if minute % 2 else "fired") for minute in range(9)]
    assert told[:9] == fires_and_resolves
    assert told[9:] == [(9, "flapping"), (26, "stopped flapping")]
    stop = done.raw[-1]
    assert (stop.state.value, stop.notified_at) == ("firing", T0 + 26 * M)


def test_an_episode_that_resolves_as_it_starts_flapping_is_listed_once() -> None:
    spec = rule(flapping=Flapping(21, 0.5, 0.25))
    # a flaps, and resolves in minute 9 as it starts flapping; b resolves in that minute too
    done = run([spec], {"a": " ".join(["0.95 0.5"] * 5), "b": "_ _ _ _ _ _ _ _ 0.95 0.5"})
    assert (9, "flapping") in done.told()
    listed = [(episode.key.server, episode.started) for episode in done.episodes]
    assert sorted(set(listed)) == sorted(listed)
    assert ("a", T0 + 8 * M) in listed and ("b", T0 + 8 * M) in listed


# --- majority, made precise ----------------------------------------------------------------


def majority(quorum: Quorum, series: dict[str, str], min_active: int = 1) -> list[int]:
    spec = rule("load", LOAD, majority=True, quorum=quorum, min_active=min_active)
    return run([spec], series, component="Load").lines


def test_quorum_more_than_half_by_default_at_least_half_when_asked() -> None:
    half = {"a": "5", "b": "5", "c": "1", "d": "1"}
    assert majority(Quorum("> 50%"), half) == []
    assert majority(Quorum(">= 50%", Fraction(1, 2), strict=False), half) == [0]


def test_quorum_of_two_thirds_and_an_absolute_count() -> None:
    three_of_five = {"a": "5", "b": "5", "c": "5", "d": "1", "e": "1"}
    assert majority(Quorum("> 2/3", Fraction(2, 3)), three_of_five) == []
    assert majority(Quorum("at least 3", count=3), three_of_five) == [0]
    assert majority(Quorum("at least 4", count=4), three_of_five) == []


def test_min_active_is_a_safeguard_against_a_service_of_one() -> None:
    assert majority(Quorum("> 50%"), {"a": "5"}) == [0]  # as before: one of one
    assert majority(Quorum("> 50%"), {"a": "5"}, min_active=2) == []


def test_a_majority_alert_recovers_once_the_unrecovered_are_no_longer_a_quorum() -> None:
    spec = rule("load", LOAD, majority=True, recover_when=parse_condition("value < 3"))
    done = run([spec], {"a": "5 3.5 2", "b": "5 2 2", "c": "1 3.5 3.5"}, component="Load")
    # minute 1: a, c at 3.5 have not recovered (two of three); minute 2: only c
    assert done.told() == [(0, "fired"), (2, "resolved")]


# --- inhibition ----------------------------------------------------------------------------


def outage_and_disk() -> list[RuleSpec]:
    outage = rule("outage", "component == 'Up' and value < 1", majority=True)
    return [outage, rule(inhibited_by=("outage",), equal=("service",))]


def test_an_inhibited_alert_is_recorded_not_told_and_told_when_the_inhibition_ends() -> None:
    up, disk = "0 0 1 1", "0.95 0.95 0.95 0.5"
    done = inhibition_run(up, disk)
    assert [(m, rule, change, tell) for m, rule, change, tell in done] == [
        (0, "outage", "fired", "fired"),
        (0, "disk", "fired", None),
        (2, "outage", "resolved", "resolved"),
        (2, "disk", "no longer inhibited", "fired"),
        (3, "disk", "resolved", "resolved"),
    ]


def test_a_target_told_before_its_source_fired_still_gets_its_resolve() -> None:
    done = inhibition_run("1 0 0 0", "0.95 0.95 0.5 0.5")
    assert [(m, rule, change, tell) for m, rule, change, tell in done] == [
        (0, "disk", "fired", "fired"),
        (1, "outage", "fired", "fired"),
        (1, "disk", "inhibited", None),
        (2, "disk", "resolved", "resolved"),
    ]


def test_a_source_in_another_service_does_not_inhibit() -> None:
    outage = rule("outage", "component == 'Up' and value < 1 and service == 'T'", majority=True)
    disk = rule(inhibited_by=("outage",))
    assert run([outage, disk], {"a": "0.95"}).told() == [(0, "fired")]


def inhibition_run(up: str, disk: str) -> list[tuple[int, str, str, str | None]]:
    ruleset = RuleSet("test", tuple(SEVERITIES.values()), tuple(outage_and_disk()))
    told: list[tuple[int, str, str, str | None]] = []

    def changed(episode: Episode) -> None:
        minute = ((episode.changed_at or T0) - T0) // M
        told.append((minute, episode.key.rule, episode.change.value, episode.tell))

    engine = Engine(ruleset, lambda *_: None, on_change=changed)
    events = [*samples({"a": disk}, "S", "Disk"), *samples({"a": up}, "S", "Up")]
    events.sort(key=lambda e: e.timestamp)
    for _ in engine.run(events, Windows(0.0), lambda e: None):
        pass
    return told
