"""The live engine and its state file, in process: a real SQLite file and a clock of our own."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sereno.engine.engine import EngineState
from sereno.engine.lifecycle import Episode
from sereno.engine.windows import Watermark, Windows
from sereno.events.schema import Event
from sereno.live.evaluator import LiveEngine
from sereno.rules.rulefmt import RuleSet, load_default_rules, parse_rules
from sereno.state.store import (
    AlertMinute,
    HistoryQuery,
    Journal,
    Snapshot,
    StateStore,
    StoreError,
    create,
    journal_file,
    read_history,
)

from conftest import event
from live_service import T0, Clock, Service, disk, events

SILENCE_RULES = """
severities: {HIGH: {}}
rules:
  - name: silent
    severity: HIGH
    absent: 2m
"""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start(tmp_path: Path, clock: Clock) -> Iterator[Callable[..., Service]]:
    services: list[Service] = []

    def start_service(ruleset: RuleSet | None = None) -> Service:
        service = Service(tmp_path / "state.db", ruleset or load_default_rules(), clock)
        services.append(service)
        return service

    yield start_service
    for service in services:
        if service.live.running:
            service.stop()


def test_with_no_event_coming_the_clock_closes_the_last_minute(
    start: Callable[..., Service], clock: Clock
) -> None:
    service = start()
    service.push(disk(0.5, T0 + 10))
    clock.now += 81  # event time T0+91: T0 closes (test_live_core: a tick sooner does not)
    service.alerts_until(lambda alerts: service.live.evaluated_before > T0)  # up to 10 s
    assert service.live.evaluated_before == T0 + 60
    assert service.live.stats.windows_evaluated == 1


def test_a_per_server_rule_fires_as_its_event_comes(start: Callable[..., Service]) -> None:
    service = start()
    service.push(disk(0.95, T0 + 10), disk(0.5, T0 + 10, server="b"))
    assert [(a.key.server, a.state.value) for a in service.live.alerts()] == [("a", "firing")]
    service.push(disk(0.5, T0 + 20))  # a later sample of the same minute undoes it...
    assert len(service.live.alerts()) == 1
    service.push(disk(0.5, T0 + 95, server="b"))  # ...when the minute is evaluated
    assert service.live.alerts() == []
    told = [(e.key.server, e.state.value, e.started, e.ended) for e in service.changes]
    assert told == [("a", "firing", T0, None), ("a", "resolved", T0, T0)]


def load(server: str, value: float, timestamp: float, active: bool = True) -> dict[str, Any]:
    return event(server=server, service="S", value=value, timestamp=timestamp, active=active)


def test_a_majority_rule_fires_once_every_server_active_before_has_reported(
    start: Callable[..., Service],
) -> None:
    service = start()
    # T0: a, b and c are active (and d passive); the minute closes with nothing to alert
    service.push(load("a", 1, T0), load("b", 1, T0), load("c", 1, T0), load("d", 9, T0, False))
    service.push(load("a", 5, T0 + 60), load("b", 5, T0 + 95))  # T0 closes
    assert service.live.stats.windows_evaluated == 1
    assert service.live.alerts() == []  # 2 of 3 match in T0+60, but c has not reported
    service.push(load("c", 1, T0 + 100))
    alerts = service.live.alerts()  # T0+60 is still open
    assert [(a.key.service, a.started, a.last.value) for a in alerts] == [("S", T0 + 60, 5)]
    assert service.live.stats.windows_evaluated == 1


def test_silence_is_noticed_when_nothing_reports_at_all(
    start: Callable[..., Service], clock: Clock
) -> None:
    service = start(parse_rules(SILENCE_RULES, "silence"))
    service.push(event(server="a", timestamp=T0 + 10))
    clock.now += 400
    alerts = service.alerts_until(bool)
    # event time is T0+410: T0 is closed (a seen at T0+10), and the latest minute that can be
    # closed, T0+300, is evaluated empty: a has been silent 350 s by its end
    assert [(a.key.server, a.started, a.last.value) for a in alerts] == [("a", T0 + 300, 350)]


def test_a_restart_carries_on_with_the_alerts_and_the_open_minutes(
    start: Callable[..., Service], tmp_path: Path
) -> None:
    first = start()
    first.push(disk(0.95, T0 + 10), disk(0.5, T0 + 10, server="b"))
    first.push(disk(0.96, T0 + 70), disk(0.5, T0 + 95, server="b"))  # closes T0
    first.push(disk(0.97, T0 + 125, server="b"))  # T0+120 is not the next minute to close
    assert [(a.key.server, a.started) for a in first.live.alerts()] == [("a", T0)]
    first.stop()  # T0+60 and T0+120 are open: their events are in the journal only
    second = start()
    assert [(a.key.server, a.started) for a in second.live.alerts()] == [("a", T0)]
    second.push(disk(0.5, T0 + 150, server="c"))  # closes T0+60
    alerts = second.alerts_until(lambda alerts: len(alerts) == 2)
    assert [(a.key.server, a.started, a.windows) for a in alerts] == [
        ("a", T0, 2),
        ("b", T0 + 120, 1),  # early: T0+120 is now the next minute to close
    ]
    told = [(e.key.server, e.state.value, e.started) for e in first.changes + second.changes]
    assert told == [("a", "firing", T0), ("b", "firing", T0 + 120)]  # each once
    history = msgspec.json.decode(read_history(tmp_path / "state.db", HistoryQuery()))
    assert [(h["server"], h["state"], h["windows"]) for h in history] == [
        ("b", "firing", 1),
        ("a", "firing", 2),
    ]


def test_after_a_restart_the_downtime_is_no_servers_silence(
    start: Callable[..., Service],
) -> None:
    silence = parse_rules(SILENCE_RULES, "silence")
    first = start(silence)
    first.push(event(server="a", timestamp=T0 + 10), event(server="b", timestamp=T0 + 10))
    first.push(event(server="a", timestamp=T0 + 95))  # closes T0
    first.stop()
    second = start(silence)
    # ten minutes later only a reports: b's silence counts from the first event of this run
    second.push(event(server="a", timestamp=T0 + 700), event(server="a", timestamp=T0 + 790))
    assert second.live.stats.windows_evaluated == 2  # T0+60 (from the journal), T0+660
    assert second.live.alerts() == []
    second.push(event(server="a", timestamp=T0 + 870))  # closes T0+780: b silent 140 s
    alerts = second.alerts_until(bool)
    assert [(a.key.server, a.started, a.last.value) for a in alerts] == [("b", T0 + 780, 140)]


def test_the_journal_keeps_a_batch_until_all_its_minutes_are_evaluated(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    create(db)
    journal, store = Journal(db), StateStore(db, Event)
    for timestamps in ([T0 + 1, T0 + 59], [T0 + 59, T0 + 61], [T0 + 130]):
        journal.append(events(*(event(timestamp=t) for t in timestamps)))
    assert [seq for seq, _ in store.journal(lambda letter: None)] == [1, 2, 3]
    windows = Windows(30, Watermark(closed_before=T0 + 60, newest=T0 + 130))
    store.checkpoint(Snapshot(3, windows.watermark, EngineState()), [])
    assert [seq for seq, _ in store.journal(lambda letter: None)] == [1, 2, 3]
    journal.trim(windows.watermark.closed_before)  # the minutes before are saved
    journal.close()  # once the trim it was asked for is done
    kept = list(store.journal(lambda letter: None))
    assert [(seq, [e.timestamp for e in batch]) for seq, batch in kept] == [
        (2, [T0 + 59, T0 + 61]),
        (3, [T0 + 130]),
    ]


def test_a_state_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("shopping list\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.txt: file is not a database"):
        create(not_a_db)


def test_a_journal_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    journal_file(db).write_text("shopping list\n" * 100)
    refused = r"cannot open the state file .*state\.db-events: file is not a database"
    with pytest.raises(StoreError, match=refused):
        create(db)


class UnwritableStore(StateStore):
    def checkpoint(
        self,
        snapshot: Snapshot,
        changed: Sequence[Episode],
        outgoing: Sequence[tuple[str, object]] = (),
        minutes: Sequence[AlertMinute] = (),
        prune_minutes_before: int | None = None,
    ) -> None:
        raise sqlite3.OperationalError("disk I/O error")


def test_an_evaluator_that_cannot_save_its_state_stops_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    create(db)
    live = LiveEngine(load_default_rules(), 30, UnwritableStore(db, Event), lambda e: None)
    failures: list[Exception] = []
    live.start(on_failure=failures.append)
    live.submit(1, events(disk(0.95, T0 + 10)))  # fires early: the state must be saved
    live.stop()
    assert [str(error) for error in failures] == ["disk I/O error"]
    assert live.failure is failures[0]
    assert not live.running


def test_a_minute_that_cannot_be_evaluated_is_set_aside_and_the_rest_go_on(
    tmp_path: Path, clock: Clock, engine_failing_on_a_minute: None
) -> None:
    db = tmp_path / "state.db"
    create(db)
    journal, store = Journal(db), StateStore(db, Event)
    told: list[str] = []
    live = LiveEngine(load_default_rules(), 30, store, lambda e: None, clock=clock, log=told.append)
    live.start()
    for timestamp in (T0 + 10, T0 + 95, T0 + 160):
        batch = events(disk(0.95, timestamp))
        live.submit(journal.append(batch), batch)
    deadline = time.monotonic() + 10
    while live.stats.windows_evaluated < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.running
    assert live.stats.evaluation_errors == 1
    assert told == [
        "sereno: the minute at 1476057600 could not be evaluated, set aside: "
        "OverflowError('the engine failed on this minute')"
    ]
    assert [(a.key.server, a.last_window) for a in live.alerts()] == [("a", T0 + 60)]
    live.stop()
    journal.close()
    store.close()


def test_batches_waiting_behind_a_slow_step_are_not_late(tmp_path: Path) -> None:
    """Event time moves on with the clock only while no batch waits: a step that took long
    is not the fleet's silence, so the batch queued behind it is not late."""
    db = tmp_path / "sereno.db"
    create(db)
    store = StateStore(db, Event)
    clock = Clock()

    def slow_clock() -> float:  # each step seems to take ten seconds
        clock.now += 10
        return clock.now

    live = LiveEngine(load_default_rules(), 0, store, lambda episode: None, clock=slow_clock)
    live.submit(1, events(disk(0.5, T0 + 50)))
    live.submit(2, events(disk(0.95, T0 + 55, server="b")))
    live.start()
    deadline = time.monotonic() + 10
    while live.stats.events_evaluated < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    live.stop()
    store.close()
    assert live.stats.events_evaluated == 2
    assert live.stats.late_events == 0
