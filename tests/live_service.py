"""The live engine on a real state file, journalled as `sereno serve` does, with a clock of
the test's own: shared by the evaluator's and the state file's tests."""

from __future__ import annotations

import threading
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
        self._submitted = self._taken = 0
        self._progress = threading.Condition()
        self.live = LiveEngine(
            ruleset,
            30,
            self.store,
            self.changes.append,
            clock=clock,
            checkpoint_every=0,
            on_progress=self._took,
        )
        self.live.start()

    def push(self, *records: dict[str, Any]) -> None:
        """Journal and queue the events, and wait until they are evaluated, saved and shown."""
        batch = events(*records)
        self.live.submit(self.journal.append(batch), batch)
        self.journal.trim(self.live.saved_before)
        self._submitted += 1
        deadline = time.monotonic() + 10
        with self._progress:  # or until the engine stops on an error
            while self._taken < self._submitted and self.live.running:
                if not self._progress.wait(min(0.05, deadline - time.monotonic())):
                    assert time.monotonic() < deadline, "the batch was not taken in time"

    def _took(self, taken: int) -> None:
        with self._progress:
            self._taken = taken
            self._progress.notify_all()

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
