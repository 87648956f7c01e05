"""The live engine of `sereno serve`: events in as they are pushed, alert state out.

Ingest only queues events; one worker thread feeds them through the same windows, rules and
lifecycle as a batch run, so the HTTP handlers never wait on evaluation. After each minute it
publishes a snapshot of the open alerts for the read API, and hands every change of an alert's
state to `on_change` (the alerts log).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sereno.engine import Engine
from sereno.events import Event, EventBatch
from sereno.lifecycle import Episode
from sereno.rulefmt import RuleSet, RuleSpec
from sereno.windows import Windows

QUEUE_BATCHES = 1024  # the backlog of pushed batches, beyond which ingest waits


@dataclass
class LiveStats:
    """Counters the metrics read: written by the worker only."""

    events_evaluated: int = 0
    late_events: int = 0
    windows_evaluated: int = 0
    condition_errors: int = 0


class LiveEngine:
    """Evaluates pushed events in a worker thread; `alerts()` is the latest open alerts."""

    def __init__(
        self,
        ruleset: RuleSet,
        allowed_lateness: float,
        on_change: Callable[[Episode], None],
        on_window: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.ruleset = ruleset
        self.stats = LiveStats()
        self._engine = Engine(ruleset, self._condition_error, on_change=on_change)
        self._windows = Windows(allowed_lateness)
        self._on_window = on_window  # told how long each minute took to evaluate
        self._queue: queue.Queue[list[Event] | None] = queue.Queue(QUEUE_BATCHES)
        self._open: list[Episode] = []
        self._worker = threading.Thread(target=self._work, name="sereno-evaluator", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        """Evaluate what is queued, then stop the worker (open minutes stay open)."""
        self._queue.put(None)
        self._worker.join()

    @property
    def running(self) -> bool:
        return self._worker.is_alive()

    def submit(self, events: list[Event]) -> bool:
        """Queue events for evaluation; False if the queue is full (the worker is behind)."""
        if events:
            try:
                self._queue.put_nowait(events)
            except queue.Full:
                return False
        return True

    def alerts(self) -> list[Episode]:
        """The alerts firing or pending after the latest minute evaluated, oldest first."""
        return self._open

    def _work(self) -> None:
        while (events := self._queue.get()) is not None:
            self._evaluate(events)

    def _evaluate(self, events: list[Event]) -> None:
        batch = EventBatch(events, range(len(events)), "push", in_array=True)
        started = time.perf_counter()
        for _ in self._engine.run_batch(batch, self._windows, self._late):
            self.stats.windows_evaluated += 1
            self._on_window(time.perf_counter() - started)
            self._open = self._engine.lifecycle.still_open()
        self.stats.events_evaluated += len(events)

    def _late(self, batch: EventBatch, index: int) -> None:
        self.stats.late_events += 1

    def _condition_error(self, spec: RuleSpec, event: Event, error: Exception) -> None:
        self.stats.condition_errors += 1
