"""The live engine of `sereno serve`: events in as they are pushed, alert state out.

Ingest journals each batch and queues it; one worker thread feeds the batches, and the
clock's ticks between them, to the evaluation (`LiveCore`), so the HTTP handlers never wait on
it. When the evaluation asks for a checkpoint, the worker saves the state with the
notifications its changes call for (in one transaction), hands each change of an alert's state
to `on_change` (the alerts log), wakes the delivery and publishes the open alerts, then the
fleet, for the read API (each a value replaced whole, never changed in place): in that order,
so that what is told is on disk, and what is shown has been told.

At start, the saved state and the journal's batches not yet evaluated are taken again; a batch
that cannot be evaluated is set aside as a dead letter, so that one bad entry does not keep
the service from starting.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sereno.engine.lifecycle import Episode
from sereno.events.schema import Event, event_type
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW
from sereno.live.core import CHECKPOINT_SECONDS, TICK_SECONDS, LiveCore, LiveStats, Step
from sereno.live.fleet import DEFAULT_QUIET_AFTER, FleetSnapshot, FleetView
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import RuleSet
from sereno.state.store import DeadLetter, StateStore
from sereno.stderr import to_stderr

QUEUE_BATCHES = 1024  # the backlog of pushed batches, beyond which ingest answers 503
RELOAD_TIMEOUT = 60.0


@dataclass(frozen=True)
class _Batch:
    seq: int  # its place in the journal
    events: list[Event]


@dataclass
class _Reload:
    ruleset: RuleSet
    planner: Planner | None
    done: threading.Event = field(default_factory=threading.Event)


class Evaluation(Protocol):
    """What the HTTP side reads of the evaluation, and hands it: a `LiveEngine` in the same
    process, or one in a process of its own (`live.process.EvaluatorProcess`)."""

    @property
    def ruleset(self) -> RuleSet: ...

    @property
    def event_type(self) -> type[Event]:
        """What ingest decodes into (the rules' extra fields kept)."""
        ...

    @property
    def stats(self) -> LiveStats: ...

    @property
    def evaluated_before(self) -> float:
        """Every minute before this time is evaluated: an event for one of them is late."""
        ...

    @property
    def saved_before(self) -> float:
        """Every minute before this time is evaluated and saved: the journal's batches of
        those minutes alone are no longer needed."""
        ...

    @property
    def running(self) -> bool: ...

    def has_room(self) -> bool:
        """Whether a batch can be queued now; if not, the evaluation is behind."""
        ...

    def submit(self, seq: int, events: list[Event]) -> None:
        """Queue a batch the journal holds as `seq`."""
        ...

    def reload(self, ruleset: RuleSet, planner: Planner | None = None) -> None:
        """Evaluate with `ruleset` (and plan with `planner`) from now on."""
        ...

    def alerts(self) -> list[Episode]:
        """The alerts firing or pending, as of the latest checkpoint."""
        ...

    def fleet(self) -> FleetView:
        """The fleet, as of the latest checkpoint."""
        ...


class LiveEngine:
    """Evaluates pushed events in a worker thread; `alerts()` is the latest open alerts."""

    def __init__(
        self,
        ruleset: RuleSet,
        allowed_lateness: float,
        store: StateStore,
        on_change: Callable[[Episode], None],
        on_window: Callable[[float], None] = lambda seconds: None,
        clock: Callable[[], float] = time.monotonic,
        checkpoint_every: float = CHECKPOINT_SECONDS,
        planner: Planner | None = None,
        on_queued: Callable[[], None] = lambda: None,
        max_skew: float = DEFAULT_MAX_CLOCK_SKEW,
        log: Callable[[str], None] = to_stderr,
        on_dead_letter: Callable[[DeadLetter], None] = lambda letter: None,
        quiet_after: float = DEFAULT_QUIET_AFTER,
        on_progress: Callable[[int], None] = lambda taken: None,
    ) -> None:
        self.ruleset = ruleset
        self.event_type = event_type(ruleset.fields)  # what ingest decodes into
        self._core = LiveCore(
            ruleset,
            allowed_lateness,
            clock(),
            checkpoint_every,
            planner,
            max_skew,
            on_window,  # told how long each minute took to evaluate
            time.perf_counter,
            quiet_after,
        )
        self.stats: LiveStats = self._core.stats
        self._store = store
        self._on_change = on_change
        self._clock = clock
        self._checkpoint_every = checkpoint_every
        self._on_queued = on_queued  # told when a checkpoint queued notifications
        self._on_dead_letter = on_dead_letter  # told of a journal entry set aside at start
        self._on_progress = on_progress  # told after each step, with the batches taken so far
        self._taken = 0
        self.saved_before = float("-inf")
        self._log = log
        self._queue: queue.Queue[_Batch | _Reload | None] = queue.Queue(QUEUE_BATCHES)
        self._open: list[Episode] = []
        self._fleet: FleetSnapshot = self._core.fleet()
        self.failure: Exception | None = None
        self._on_failure: Callable[[Exception], None] = lambda error: None
        self._worker = threading.Thread(target=self._work, name="sereno-evaluator", daemon=True)

    def start(self, on_failure: Callable[[Exception], None] = lambda error: None) -> None:
        """Pick up the saved state and the journal's batches, then start the worker;
        `on_failure` is told if it stops on an error (then in `failure`)."""
        self._recover()
        self._on_failure = on_failure
        self._worker.start()

    def stop(self) -> None:
        """Evaluate what is queued, then stop the worker (open minutes stay open, and stay
        in the journal for the next start)."""
        while self._worker.is_alive():  # a worker that failed takes nothing from a full queue
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                pass
        self._worker.join()

    @property
    def running(self) -> bool:
        return self._worker.is_alive()

    def has_room(self) -> bool:
        """Whether a batch can be queued now; if not, the worker is behind."""
        return not self._queue.full()

    def submit(self, seq: int, events: list[Event]) -> None:
        """Queue a batch the journal holds as `seq`."""
        self._queue.put(_Batch(seq, events))

    def reload(self, ruleset: RuleSet, planner: Planner | None = None) -> None:
        """Evaluate with `ruleset` from now on, keeping the alerts of the rules it still has
        (and plan notifications with `planner`, if given)."""
        self.event_type = event_type(ruleset.fields)
        request = _Reload(ruleset, planner)
        self._queue.put(request)
        if not request.done.wait(RELOAD_TIMEOUT):
            raise TimeoutError("the evaluator did not take the new rules in time")

    def alerts(self) -> list[Episode]:
        """The alerts firing or pending now, as alerts are listed: by start, rule order,
        service and server."""
        return self._open

    def fleet(self) -> FleetView:
        """The fleet as of the latest minute evaluated and saved (its view is made by the
        first to ask for it)."""
        return self._fleet.view

    def fleet_snapshot(self) -> FleetSnapshot:
        """The same fleet, its view not yet made: what is handed to another process."""
        return self._fleet

    @property
    def evaluated_before(self) -> float:
        """Every minute before this time is evaluated: an event for one of them is late."""
        return self._core.evaluated_before

    def _recover(self) -> None:
        snapshot = self._store.load()
        if snapshot is not None:
            self._core.restore(snapshot)
            self.saved_before = snapshot.watermark.closed_before
        for seq, events in self._store.journal(self._on_dead_letter, self.saved_before):
            self._replay(seq, events)
        self._open = self._core.open_alerts()
        self._fleet = self._core.fleet()

    def _replay(self, seq: int, events: list[Event]) -> None:
        """Take a batch of the journal again; set it aside if it cannot be evaluated, so that
        one bad entry does not keep the service from starting."""
        try:
            step = self._core.replay(seq, events, self._clock())
        except Exception as error:
            reason = f"cannot be evaluated: {type(error).__name__}: {error}"
            self._on_dead_letter(self._store.set_aside(seq, reason))
            return
        self._carry_out(step)

    def _work(self) -> None:
        try:
            self._take_queue()
        except Exception as error:  # a state file that cannot be written, say
            self.failure = error
            self._on_failure(error)

    def _take_queue(self) -> None:
        while True:
            wait = self._checkpoint_every if self._core.unsaved else TICK_SECONDS
            try:
                item = self._queue.get(timeout=min(wait, TICK_SECONDS))
            except queue.Empty:
                self._carry_out(self._core.tick(self._clock()))
                self._on_progress(self._taken)
                continue
            if item is None:
                return
            if isinstance(item, _Reload):
                self.ruleset = item.ruleset
                self._carry_out(self._core.swap_rules(item.ruleset, item.planner, self._clock()))
                item.done.set()
            else:
                self._carry_out(self._core.take(item.seq, item.events, self._clock()))
                self._taken += 1
            if self._queue.empty():  # else newer events wait: the time spent is no silence
                self._carry_out(self._core.tick(self._clock()))
            self._on_progress(self._taken)

    def _carry_out(self, step: Step) -> None:
        """Tell what the step has to say; save its checkpoint, then tell its changes, wake the
        delivery and show the open alerts."""
        for line in step.told:
            self._log(line)
        checkpoint = step.checkpoint
        if checkpoint is None:
            return
        self._store.checkpoint(
            checkpoint.snapshot,
            checkpoint.changes,
            checkpoint.outgoing,
            checkpoint.minutes,
            checkpoint.prune_minutes_before,
        )
        self.saved_before = checkpoint.snapshot.watermark.closed_before
        for episode in checkpoint.changes:
            self._on_change(episode)
        if checkpoint.outgoing:
            self._on_queued()
        self._open = checkpoint.open_alerts
        self._fleet = self._core.fleet()
