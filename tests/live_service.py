"""The live engine on a real state file, journalled as `sereno serve` does, with a clock of
the test's own: shared by the evaluator's and the state file's tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.events.schema import Event
from sereno.live.evaluator import LiveEngine
from sereno.rules.rulefmt import RuleSet
from sereno.state.store import (
    Journal,
    StateStore,
    create,
)

from conftest import event

T0 = 1476057600


class Clock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(*records: dict[str, Any]) -> list[Event]:
    return [msgspec.convert(record, Event) for record in records]


class Service:
    """A live engine on a state file, journalled as `sereno serve` does; its log of changes.

    It saves (and so tells and shows) alerts fired early at once, not a fraction of a second
    later, so that a test sees them as soon as the events are taken."""

    def __init__(self, db: Path, ruleset: RuleSet, clock: Clock) -> None:
        create(db)
        self.changes: list[Episode] = []
        self.journal = Journal(db)
        self.store = StateStore(db, Event)
        self.live = LiveEngine(
            ruleset, 30, self.store, self.changes.append, clock=clock, checkpoint_every=0
        )
        self.live.start()

    def push(self, *records: dict[str, Any]) -> None:
        """Journal and queue the events, and wait until they are evaluated."""
        batch = events(*records)
        expected = self.live.stats.events_evaluated + len(batch)
        self.live.submit(self.journal.append(batch), batch)
        deadline = time.monotonic() + 10
        while self.live.stats.events_evaluated < expected and time.monotonic() < deadline:
            time.sleep(0.01)

    def alerts_until(self, done: Callable[[list[Episode]], bool]) -> list[Episode]:
        deadline = time.monotonic() + 10
        while not done(alerts := self.live.alerts()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return alerts

    def stop(self) -> None:
        self.live.stop()
        self.journal.close()
        self.store.close()


def disk(value: float, timestamp: float, server: str = "a") -> dict[str, Any]:
    return event(
        server=server, service="S", component="DiskUsedPercentage", value=value, timestamp=timestamp
    )
