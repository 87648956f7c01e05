"""The live engine of `sereno serve`: events in as they are pushed, alert state out.

Ingest journals each batch and queues it; one worker thread feeds the batches through the
same windows, rules and lifecycle as a batch run, so the HTTP handlers never wait on
evaluation. After the minutes a batch closes are evaluated, the worker checkpoints the state
with the notifications its changes call for (in one transaction), hands each change of an
alert's state to `on_change` (the alerts log), wakes the delivery and publishes the open alerts
for the read API: in that order, so that what is told is on disk, and what is shown has been
told.

The next minute to close is looked at early, batch by batch: a per-server rule fires as its
event comes, a majority rule once every server active in the service's previous minute has
reported; the minute's evaluation, when it closes, has the last word.

Event time moves on with the events; while none newer comes, it moves on with the clock from
the newest one (a tick), so that the last minutes are evaluated and silence is noticed even
when nothing reports.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode, State, episodes_in_order
from sereno.engine.windows import WINDOW_SECONDS, Misfits, Window, Windows
from sereno.errors import SerenoError
from sereno.events.schema import Event, event_type
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW, ahead_reason
from sereno.notify.notice import Notice, Planner
from sereno.rules.rulefmt import RuleSet, RuleSpec
from sereno.state.store import DeadLetter, Snapshot, StateStore, StoreError
from sereno.stderr import to_stderr

QUEUE_BATCHES = 1024  # the backlog of pushed batches, beyond which ingest answers 503
TICK_SECONDS = 1.0  # how often event time is moved on by the clock when no event comes
CHECKPOINT_SECONDS = 0.2  # how long alerts fired early may wait to be saved, told and shown
RELOAD_TIMEOUT = 60.0


_T = TypeVar("_T")
MAX_REPORTED = 10  # events ahead of the fleet and evaluation errors told on stderr, then counted


@dataclass
class LiveStats:
    """Counters the metrics read: written by the worker only."""

    events_evaluated: int = 0
    late_events: int = 0
    ahead_events: int = 0  # rejected as ahead of the fleet
    windows_evaluated: int = 0
    condition_errors: int = 0
    evaluation_errors: int = 0  # batches and minutes the engine failed on, set aside


class _Counted:
    """The misfits of one batch: late events are counted; events ahead of the fleet are
    counted and told (the first few of them)."""

    def __init__(self, events: list[Event], stats: LiveStats, log: Callable[[str], None]) -> None:
        self._events, self._stats, self._log = events, stats, log

    def late(self, index: int) -> None:
        self._stats.late_events += 1

    def ahead(self, index: int, fleet_time: float) -> None:
        self._stats.ahead_events += 1
        if self._stats.ahead_events <= MAX_REPORTED:
            event = self._events[index]
            reason = ahead_reason(event.timestamp, fleet_time, "the rest of the fleet")
            self._log(f"sereno: rejected an event of server {event.server}: {reason}")


class _Replayed:
    """Misfits of the batches replayed at start-up that were evaluated before: told already."""

    def late(self, index: int) -> None:
        pass

    def ahead(self, index: int, fleet_time: float) -> None:
        pass


@dataclass(frozen=True)
class _Batch:
    seq: int  # its place in the journal
    events: list[Event]


@dataclass
class _Reload:
    ruleset: RuleSet
    planner: Planner | None
    done: threading.Event = field(default_factory=threading.Event)


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
    ) -> None:
        self.ruleset = ruleset
        self.event_type = event_type(ruleset.fields)  # what ingest decodes into
        self.stats = LiveStats()
        self._store = store
        self._on_change = on_change
        self._on_window = on_window  # told how long each minute took to evaluate
        self._clock = clock
        self._changes: list[Episode] = []  # since the last checkpoint
        self._planner = planner  # which notifications the changes call for
        self._on_queued = on_queued  # told when a checkpoint queued notifications
        self._on_dead_letter = on_dead_letter  # told of a journal entry set aside at start
        self._reminders: list[tuple[str, Notice]] = []  # since the last checkpoint
        self._last_minute: int | None = None  # the start of the latest minute evaluated
        self._checkpoint_every = checkpoint_every
        self._saved_at = float("-inf")  # time.monotonic() of the last checkpoint
        self._engine = self._new_engine(ruleset)
        self._allowed_lateness, self._max_skew = allowed_lateness, max_skew
        self._log = log
        self._windows = Windows(allowed_lateness, max_skew=max_skew)
        self._seq = 0  # the journal's latest batch taken
        self._newest_since = clock()  # when event time last moved on
        self._excuse_silence = False  # after a restart: the downtime is no server's silence
        self._early_start: int | None = None  # the minute the rules have looked at early
        self._queue: queue.Queue[_Batch | _Reload | None] = queue.Queue(QUEUE_BATCHES)
        self._open: list[Episode] = []
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

    def _new_engine(self, ruleset: RuleSet) -> Engine:
        return Engine(ruleset, self._condition_error, on_change=self._changed)

    def _changed(self, episode: Episode) -> None:
        self._changes.append(msgspec.structs.replace(episode))  # as it is now

    def _recover(self) -> None:
        snapshot = self._store.load()
        if snapshot is not None:
            self._windows = Windows(self._allowed_lateness, snapshot.watermark, self._max_skew)
            if snapshot.watermark.closed_before > float("-inf"):
                self._last_minute = int(snapshot.watermark.closed_before) - WINDOW_SECONDS
            self._drop(self._engine.restore(snapshot.engine))
            self._seq = snapshot.seq
            self._excuse_silence = True
        for seq, events in self._store.journal(self._on_dead_letter):
            self._replay(_Batch(seq, events))
        self._publish()

    def _replay(self, batch: _Batch) -> None:
        """Take a batch of the journal again; set it aside if it cannot be evaluated, so that
        one bad entry does not keep the service from starting."""
        # the batches evaluated before the snapshot only fill the open minutes again
        misfits = self._misfits(batch) if batch.seq > self._seq else _Replayed()
        try:
            self._take(batch, misfits)
        except StoreError:
            raise  # the state file's trouble, not the batch's
        except Exception as error:
            reason = f"cannot be evaluated: {type(error).__name__}: {error}"
            self._on_dead_letter(self._store.set_aside(batch.seq, reason))

    def _work(self) -> None:
        try:
            self._take_queue()
        except Exception as error:  # a state file that cannot be written, say
            self.failure = error
            self._on_failure(error)

    def _take_queue(self) -> None:
        while True:
            wait = self._checkpoint_every if self._changes else TICK_SECONDS
            try:
                item = self._queue.get(timeout=min(wait, TICK_SECONDS))
            except queue.Empty:
                self._tick()
                self._save(evaluated=False)
                continue
            if item is None:
                return
            if isinstance(item, _Reload):
                self._swap_rules(item)
            else:
                self._contained(f"the batch of {len(item.events)} events", self._take_live, item)
            self._tick()

    def _take_live(self, batch: _Batch) -> None:
        if self._excuse_silence:
            self._excuse_downtime(min(event.timestamp for event in batch.events))
        self._take(batch, self._misfits(batch))

    def _misfits(self, batch: _Batch) -> _Counted:
        return _Counted(batch.events, self.stats, self._log)

    def _contained(self, what: str, step: Callable[[_T], object], argument: _T) -> None:
        """Take a step of evaluation; if the input makes it fail, say so, count it and go on
        (the state file failing is not the input's doing: that stops the evaluator)."""
        try:
            step(argument)
        except (sqlite3.Error, SerenoError):
            raise
        except Exception as error:
            self.stats.evaluation_errors += 1
            if self.stats.evaluation_errors <= MAX_REPORTED:
                self._log(f"sereno: {what} could not be evaluated, set aside: {error!r}")

    @property
    def evaluated_before(self) -> float:
        """Every minute before this time is evaluated: an event for one of them is late."""
        return self._windows.watermark.closed_before

    def _take(self, batch: _Batch, misfits: Misfits) -> None:
        newest = self._windows.watermark.newest
        evaluated = self._evaluate(self._windows.extend(batch.events, misfits))
        self._seq = max(self._seq, batch.seq)
        self.stats.events_evaluated += len(batch.events)
        if self._windows.watermark.newest > newest:
            self._newest_since = self._clock()
        self._fire_early(batch.events)
        self._save(evaluated)

    def _fire_early(self, events: list[Event]) -> None:
        """Let the rules look at the new events of the next minute to close, before it does."""
        oldest = self._windows.oldest()
        if oldest is None:
            return
        start = oldest.start
        if start != self._early_start:  # it has just become the oldest: all of it is new
            self._early_start, fresh = start, oldest.events
        else:
            end = start + WINDOW_SECONDS
            fresh = [event for event in events if start <= event.timestamp < end]
        if fresh:
            self._engine.fire_early(start, fresh)

    def _excuse_downtime(self, since: float) -> None:
        """After a restart, silence rules count every server's silence again from the first
        event, or tick, of the new run: the time the service was down is nobody's silence."""
        if self._excuse_silence:
            self._excuse_silence = False
            self._engine.excuse_silence_until(since)

    def _tick(self) -> None:
        newest = self._windows.watermark.newest
        elapsed = self._clock() - self._newest_since
        if newest == float("-inf") or elapsed < TICK_SECONDS:
            return
        now = newest + elapsed
        self._excuse_downtime(now)
        self._newest_since = self._clock()
        evaluated = self._evaluate(self._windows.advance(now))
        self._fire_early([])
        self._save(evaluated)

    def _evaluate(self, windows: Iterable[Window]) -> bool:
        """Evaluate the windows; whether there were any."""
        started = time.perf_counter()
        evaluated = False
        for window in windows:
            self._contained(f"the minute at {window.start}", self._engine.evaluate, window)
            self._remind(window.start)
            self.stats.windows_evaluated += 1
            self._on_window(time.perf_counter() - started)
            evaluated = True
        return evaluated

    def _remind(self, start: int) -> None:
        """Plan the reminders of alerts still firing that are due in the minute at `start`."""
        previous = self._last_minute if self._last_minute is not None else start - WINDOW_SECONDS
        self._last_minute = start
        if self._planner is not None and self._planner.reminds:
            self._reminders += self._planner.repeats(self._engine.firing(), start, previous)

    def _save(self, evaluated: bool) -> None:
        """Checkpoint at once after an evaluated minute; alerts fired early, at most every
        `checkpoint_every` seconds: a stream of them then costs a few checkpoints a second,
        not one a batch."""
        if evaluated or (
            self._changes and time.monotonic() - self._saved_at >= self._checkpoint_every
        ):
            self._checkpoint()

    def _checkpoint(self) -> None:
        changes, self._changes = self._changes, []
        outgoing, self._reminders = self._reminders, []
        if self._planner is not None:
            outgoing = self._planner.for_changes(changes) + outgoing
        snapshot = Snapshot(self._seq, self._windows.watermark, self._engine.state())
        self._store.checkpoint(snapshot, changes, outgoing)
        self._saved_at = time.monotonic()
        for episode in changes:
            self._on_change(episode)
        if outgoing:
            self._on_queued()
        self._publish()

    def _publish(self) -> None:
        engine = self._engine
        self._open = episodes_in_order(engine.lifecycle.still_open(), engine.rule_order)

    def _swap_rules(self, request: _Reload) -> None:
        engine = self._new_engine(request.ruleset)
        self._drop(engine.restore(self._engine.state()))
        self._engine, self.ruleset = engine, request.ruleset
        if request.planner is not None:
            self._planner = request.planner
        elif self._planner is not None:
            self._planner.use(request.ruleset)
        self._early_start = None  # the new rules have seen nothing of the open minutes
        self._checkpoint()
        request.done.set()

    def _drop(self, episodes: list[Episode]) -> None:
        """The open alerts of rules no longer there end as dropped, from the next minute to
        be evaluated: told, and kept so in the history."""
        next_minute = self._windows.watermark.closed_before
        for episode in episodes:
            # an alert fired early in the very first minute has no minute evaluated before it
            ended = max(next_minute, episode.last_window + WINDOW_SECONDS)
            episode.state, episode.ended = State.DROPPED, int(ended)
            self._changed(episode)

    def _condition_error(self, spec: RuleSpec, event: Event, error: Exception) -> None:
        self.stats.condition_errors += 1
