"""The service's evaluation on its own: batches and ticks given with invented times, and what
each one changes (minutes evaluated, alerts told, notifications planned, checkpoints)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sereno.events.schema import Event
from sereno.live.core import Checkpoint, LiveCore, Step
from sereno.live.fleet import FleetView, Reading, ServerSeen
from sereno.notify.config import NotifyConfig, ReceiverSpec, Timing
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import RuleSet, load_default_rules, parse_rules
from sereno.state.store import AlertMinute

from conftest import event

T0 = 1476057600
START = 1000.0  # the monotonic clock when the core is made
SILENCE_RULES = parse_rules(
    """
severities: {HIGH: {}}
rules:
  - name: silent
    severity: HIGH
    absent: 2m
""",
    "silence",
)


def disk(value: float, timestamp: float, server: str = "a") -> Event:
    record = event(
        server=server, service="S", component="DiskUsedPercentage", value=value, timestamp=timestamp
    )
    return msgspec.convert(record, Event)


def seen(server: str, timestamp: float) -> Event:
    return msgspec.convert(event(server=server, timestamp=timestamp), Event)


def core(ruleset: RuleSet | None = None, planner: Planner | None = None) -> LiveCore:
    return LiveCore(ruleset or load_default_rules(), 30, START, planner=planner)


def saved(step: Step) -> Checkpoint:
    assert step.checkpoint is not None, "no checkpoint"
    return step.checkpoint


def told(step: Step) -> list[tuple[str, str, int]]:
    """The alert changes a step's checkpoint tells: (server, state, started)."""
    return [(e.key.server, e.state.value, e.started) for e in saved(step).changes]


@pytest.mark.parametrize(
    ("seconds_later", "evaluated"),
    [
        (0, []),  # no time has passed
        (0.5, []),  # less than a tick
        (81, [T0]),  # event time T0+91: T0 closes
        # event time T0+210: T0 closes, and the latest minute passed is evaluated empty (so
        # that silence is noticed); T0+60 between is skipped, as a gap in a file is
        (200, [T0, T0 + 120]),
    ],
)
def test_a_tick_moves_event_time_on_by_the_time_passed_since_the_newest_event(
    seconds_later: float, evaluated: list[int]
) -> None:
    live = core()
    assert live.take(1, [disk(0.5, T0 + 10)], START).evaluated == []
    step = live.tick(START + seconds_later)
    assert step.evaluated == evaluated
    assert (step.checkpoint is not None) == bool(evaluated)  # an evaluated minute is saved


def test_a_tick_before_any_event_evaluates_nothing() -> None:
    assert core().tick(START + 3600) == Step()


def test_a_per_server_rule_fires_early_and_further_changes_wait_to_be_saved() -> None:
    live = core()
    first = live.take(1, [disk(0.95, T0 + 10)], START)
    assert first.evaluated == []
    assert told(first) == [("a", "firing", T0)]  # nothing saved yet: saved at once
    assert [a.key.server for a in saved(first).open_alerts] == ["a"]
    # a second alert fired early less than `checkpoint_every` later waits for the next one
    second = live.take(2, [disk(0.95, T0 + 12, server="b")], START + 0.1)
    assert second.checkpoint is None
    assert live.unsaved
    assert live.tick(START + 0.15).checkpoint is None
    assert told(live.tick(START + 0.25)) == [("b", "firing", T0)]
    assert not live.unsaved


def test_the_minute_closing_has_the_last_word_on_an_alert_fired_early() -> None:
    live = core()
    live.take(1, [disk(0.95, T0 + 10)], START)
    live.take(2, [disk(0.5, T0 + 20)], START + 1)  # a later sample of the same minute
    step = live.take(3, [disk(0.5, T0 + 95, server="b")], START + 2)
    assert step.evaluated == [T0]
    assert told(step) == [("a", "resolved", T0)]
    assert saved(step).open_alerts == []
    assert saved(step).snapshot.seq == 3


def test_reminders_of_an_alert_still_firing_are_planned_with_the_minutes_they_fall_in() -> None:
    hook = ReceiverSpec("hook", "webhook", "http://x", timing=Timing(repeat_interval=120))
    rules = load_default_rules()
    live = core(rules, Planner(NotifyConfig("test", (hook,)), rules))
    outgoing = []
    for seq, timestamp in enumerate(range(T0 + 10, T0 + 371, 60), start=1):
        step = live.take(seq, [disk(0.95, timestamp)], START + seq)
        if step.checkpoint is not None:
            outgoing += [(name, n.reason, n.at) for name, n in step.checkpoint.outgoing]
    assert outgoing == [
        ("hook", "fired", T0),
        ("hook", "repeat", T0 + 120),
        ("hook", "repeat", T0 + 240),
    ]


def test_a_reload_drops_the_alerts_of_the_rules_gone_and_keeps_the_others() -> None:
    live = core()
    live.take(1, [disk(0.95, T0 + 10)], START)
    live.take(2, [disk(0.95, T0 + 95)], START + 1)  # closes T0, still firing
    step = live.swap_rules(SILENCE_RULES, None, START + 2)
    ((dropped,),) = [saved(step).changes]
    assert (dropped.key.server, dropped.state.value, dropped.ended) == ("a", "dropped", T0 + 60)
    assert saved(step).open_alerts == []
    assert live.ruleset is SILENCE_RULES


def test_after_a_restart_silence_counts_from_the_first_event_of_the_new_run() -> None:
    first = core(SILENCE_RULES)
    first.take(1, [seen("a", T0 + 10), seen("b", T0 + 10)], START)
    snapshot = saved(first.take(2, [seen("a", T0 + 95)], START + 1)).snapshot  # closes T0
    second = core(SILENCE_RULES)
    second.restore(snapshot)
    assert second.replay(2, [seen("a", T0 + 95)], START).evaluated == []  # the open minute
    # ten minutes later only a reports: the downtime is not b's silence
    step = second.take(3, [seen("a", T0 + 700), seen("a", T0 + 790)], START + 1)
    assert step.evaluated == [T0 + 60, T0 + 660]
    assert second.open_alerts() == []
    step = second.take(4, [seen("a", T0 + 870)], START + 2)  # closes T0+780
    assert [(a.key.server, a.started, a.last.value) for a in saved(step).open_alerts] == [
        ("b", T0 + 780, 140)  # silent from T0+700, the first event of this run
    ]


def test_misfits_are_counted_and_a_minute_the_engine_fails_on_is_set_aside(
    engine_failing_on_a_minute: None,
) -> None:
    live = core()
    live.take(1, [disk(0.5, T0 + 10)], START)
    step = live.take(2, [disk(0.5, T0 + 95)], START + 1)
    assert step.evaluated == [T0]
    assert step.told == [
        "sereno: the minute at 1476057600 could not be evaluated, set aside: "
        "OverflowError('the engine failed on this minute')"
    ]
    live.take(3, [disk(0.5, T0 + 5)], START + 2)  # T0 is closed
    stats: dict[str, Any] = vars(live.stats)
    assert stats == {
        "events_evaluated": 3,
        "late_events": 1,
        "ahead_events": 0,
        "windows_evaluated": 1,
        "condition_errors": 0,
        "evaluation_errors": 1,
    }


# --- what each evaluated minute keeps: the alerts' minutes, the fleet ----------------------


def test_each_evaluated_minute_keeps_a_row_per_open_alert_and_per_alert_it_ended() -> None:
    live = core()
    live.take(1, [disk(0.95, T0 + 10), disk(0.5, T0 + 10, server="b")], START)
    first = saved(live.take(2, [disk(0.97, T0 + 95)], START + 1))  # closes T0
    [alert] = first.open_alerts
    assert first.minutes == [AlertMinute(alert.id, T0, 0.95, True, "MEDIUM", "firing")]
    ended = saved(live.take(3, [disk(0.3, T0 + 155)], START + 2))  # closes T0 + 60
    assert ended.minutes == [AlertMinute(alert.id, T0 + 60, 0.97, True, "MEDIUM", "firing")]
    last = saved(live.take(4, [disk(0.3, T0 + 215)], START + 3))  # closes T0 + 120
    assert last.minutes == [AlertMinute(alert.id, T0 + 120, 0.3, False, "MEDIUM", "resolved")]
    assert last.open_alerts == []


def test_an_open_alert_without_a_sample_in_a_minute_has_no_value_in_it() -> None:
    live = core()
    live.take(1, [disk(0.95, T0 + 10)], START)
    live.take(2, [disk(0.95, T0 + 70, server="b")], START + 1)  # closes nothing yet
    step = saved(live.take(3, [seen("b", T0 + 155)], START + 2))  # closes T0 and T0 + 60
    assert [(m.minute, m.value, m.matched, m.state) for m in step.minutes if m.minute > T0] == [
        (T0 + 60, None, False, "firing"),  # a sent nothing: its disk alert stays as it was
        (T0 + 60, 0.95, True, "firing"),
    ]


def test_the_alerts_minutes_older_than_a_week_are_pruned_once_an_hour_of_event_time() -> None:
    live = core()
    pruned = []
    for seq, timestamp in enumerate(range(T0 + 10, T0 + 2 * 3600, 60 * 20), start=1):
        step = live.take(seq, [disk(0.5, timestamp)], START + seq)
        if step.checkpoint is not None:
            pruned.append(step.checkpoint.prune_minutes_before)
    week = 7 * 86_400
    # minutes T0, T0 + 20m, T0 + 40m, T0 + 1h, T0 + 1h20m closed; the first, then an hour on
    assert pruned == [T0 - week, None, None, T0 + 3600 - week, None]


def test_each_evaluated_minute_updates_the_fleet_once_its_alerts_are_saved() -> None:
    live = core()
    live.take(1, [disk(0.95, T0 + 10)], START)
    before = live.fleet()
    saved(live.take(2, [disk(0.5, T0 + 95, server="b")], START + 1))
    assert before.view == FleetView(None, 120.0, ())  # a value: it stays as it was
    fleet = live.fleet()
    assert fleet.view == FleetView(
        T0 + 60,
        120.0,
        (
            ServerSeen(
                "S",
                "a",
                T0 + 10,
                True,
                False,
                (Reading("DiskUsedPercentage", 0.95, T0 + 10, ("Disk consumption exceeds 90%",)),),
            ),
        ),
    )
    assert live.fleet() is fleet  # until a minute changes it
