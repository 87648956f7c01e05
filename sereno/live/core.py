"""The service's evaluation, given its input and the time: what each input changes.

Events come in batches, as pushed; between batches the time moves on (a tick). Each input is
fed through the same windows, rules and lifecycle as a batch run, and answered with a `Step`:
the minutes evaluated, the lines to tell on stderr and, when the state is to be saved, a
`Checkpoint`: the snapshot, with the alerts changed and the notifications they call for (saved
in one transaction), and the open alerts to show once that is done.

The next minute to close is looked at early, batch by batch: a per-server rule fires as its
event comes, a majority rule once every server active in the service's previous minute has
reported; the minute's evaluation, when it closes, has the last word.

Event time moves on with the events; while none newer comes, it moves on with the time given
from the newest one (a tick), so that the last minutes are evaluated and silence is noticed
even when nothing reports.

An evaluated minute is checkpointed at once; alerts fired early at most every
`checkpoint_every` seconds: a stream of them then costs a few checkpoints a second, not one a
batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TypeVar

from sereno.engine.alerts import Alert, AlertKey, alert_key
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode, WindowResult, dropped, episodes_in_order
from sereno.engine.windows import WINDOW_SECONDS, Misfits, Window, Windows
from sereno.errors import SerenoError
from sereno.events.schema import Event
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW, ahead_reason
from sereno.live.fleet import DEFAULT_QUIET_AFTER, Fleet, FleetSnapshot
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import RuleSet, RuleSpec
from sereno.state.store import MINUTES_KEPT, AlertMinute, Snapshot

TICK_SECONDS = 1.0  # how far the time must move on before a tick moves event time on
CHECKPOINT_SECONDS = 0.2  # how long alerts fired early may wait to be saved, told and shown
MAX_REPORTED = 10  # events ahead of the fleet and evaluation errors told on stderr, then counted
PRUNE_EVERY = 3600  # seconds of event time between two prunings of the alerts' minutes

_A = TypeVar("_A")
_T = TypeVar("_T")
Outgoing = tuple[str, Notice]  # a notification for the receiver named


@dataclass
class LiveStats:
    """Counters the metrics read: written by the evaluation only."""

    events_evaluated: int = 0
    late_events: int = 0
    ahead_events: int = 0  # rejected as ahead of the fleet
    windows_evaluated: int = 0
    condition_errors: int = 0
    evaluation_errors: int = 0  # batches and minutes the engine failed on, set aside


@dataclass(frozen=True)
class Checkpoint:
    """The state to save, with what changed since the last checkpoint, in one transaction."""

    snapshot: Snapshot
    changes: list[Episode]  # each alert's state as it changed, in order
    outgoing: list[Outgoing]  # the notifications the changes and reminders call for
    open_alerts: list[Episode]  # to show once saved and told
    minutes: list[AlertMinute] = field(default_factory=list)  # of the minutes evaluated
    prune_minutes_before: int | None = None  # the alerts' minutes to drop, if any
    # per change, the notifications it calls for (the first of `outgoing`; reminders follow)
    told: list[list[Outgoing]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """What one input changed."""

    evaluated: list[int] = field(default_factory=list)  # the starts of the minutes evaluated
    told: list[str] = field(default_factory=list)  # lines for stderr
    checkpoint: Checkpoint | None = None


class _Counted:
    """The misfits of one batch: late events are counted; events ahead of the fleet are
    counted and told (the first few of them)."""

    def __init__(self, events: list[Event], stats: LiveStats, told: list[str]) -> None:
        self._events, self._stats, self._told = events, stats, told

    def late(self, index: int) -> None:
        self._stats.late_events += 1

    def ahead(self, index: int, fleet_time: float) -> None:
        self._stats.ahead_events += 1
        if self._stats.ahead_events <= MAX_REPORTED:
            event = self._events[index]
            reason = ahead_reason(event.timestamp, fleet_time, "the rest of the fleet")
            self._told.append(f"sereno: rejected an event of server {event.server}: {reason}")


class _Replayed:
    """Misfits of the batches replayed at start-up that were evaluated before: told already."""

    def late(self, index: int) -> None:
        pass

    def ahead(self, index: int, fleet_time: float) -> None:
        pass


def _no_timer() -> float:
    return 0.0


class LiveCore:
    """The windows, the engine and what is yet to be saved; every input comes with the time
    (`now`: seconds of a monotonic clock)."""

    def __init__(
        self,
        ruleset: RuleSet,
        allowed_lateness: float,
        now: float,
        checkpoint_every: float = CHECKPOINT_SECONDS,
        planner: Planner | None = None,
        max_skew: float = DEFAULT_MAX_CLOCK_SKEW,
        on_window: Callable[[float], None] = lambda seconds: None,
        timer: Callable[[], float] = _no_timer,
        quiet_after: float = DEFAULT_QUIET_AFTER,
    ) -> None:
        self.ruleset = ruleset
        self.stats = LiveStats()
        self._allowed_lateness, self._max_skew = allowed_lateness, max_skew
        self._checkpoint_every = checkpoint_every
        self._planner = planner  # which notifications the changes call for
        # told how long each minute took to evaluate, as `timer` measures it: measurement only
        self._on_window, self._timer = on_window, timer
        self._engine = self._new_engine(ruleset)
        self._windows = Windows(allowed_lateness, max_skew=max_skew)
        self._changes: list[Episode] = []  # since the last checkpoint
        self._reminders: list[Outgoing] = []  # since the last checkpoint
        self._told: list[str] = []  # since the last step
        self._last_minute: int | None = None  # the start of the latest minute evaluated
        self._saved_at = float("-inf")  # when the last checkpoint was made
        self._newest_since = now  # when event time last moved on
        self._seq = 0  # the journal's latest batch taken
        self._excuse_silence = False  # after a restart: the downtime is no server's silence
        self._early_start: int | None = None  # the minute the rules have looked at early
        self._fleet = Fleet(ruleset.rules, quiet_after)
        self._unfolded: list[tuple[Window, list[Alert]]] = []  # minutes the fleet has not seen
        self._minutes: list[AlertMinute] = []  # since the last checkpoint
        self._alert_ids = _AlertIds()
        self._prune_before: int | None = None  # the alerts' minutes to drop at the checkpoint
        self._next_prune = float("-inf")

    @property
    def evaluated_before(self) -> float:
        """Every minute before this time is evaluated: an event for one of them is late."""
        return self._windows.watermark.closed_before

    @property
    def unsaved(self) -> bool:
        """Whether alerts have changed since the last checkpoint."""
        return bool(self._changes)

    def open_alerts(self) -> list[Episode]:
        """The alerts firing or pending now, as alerts are listed: by start, rule order,
        service and server."""
        engine = self._engine
        return episodes_in_order(engine.lifecycle.still_open(), engine.rule_order)

    def restore(self, snapshot: Snapshot) -> None:
        """Carry on from a saved state: the alerts of rules no longer there are dropped, and
        the time until the first input is nobody's silence."""
        self._windows = Windows(self._allowed_lateness, snapshot.watermark, self._max_skew)
        if snapshot.watermark.closed_before > float("-inf"):
            self._last_minute = int(snapshot.watermark.closed_before) - WINDOW_SECONDS
        self._drop(self._engine.restore(snapshot.engine))
        if self._planner is not None:
            self._planner.groups.restore(snapshot.groups)
        self._seq = snapshot.seq
        self._excuse_silence = True

    def replay(self, seq: int, events: list[Event], now: float) -> Step:
        """Take a batch of the journal again at start-up; raises if it cannot be evaluated."""
        # the batches evaluated before the snapshot only fill the open minutes again
        misfits = self._misfits(events) if seq > self._seq else _Replayed()
        return self._take(seq, events, misfits, now)

    def take(self, seq: int, events: list[Event], now: float) -> Step:
        """Take a pushed batch the journal holds as `seq`; if the engine fails on it, it is
        set aside (counted and told)."""
        if self._excuse_silence:
            self._excuse_downtime(min(event.timestamp for event in events))
        batch = (seq, events, now)
        step = self._contained(f"the batch of {len(events)} events", self._take_live, batch)
        return step if step is not None else self._step([], now)

    def tick(self, now: float) -> Step:
        """Move event time on from the newest event by the time passed since it came, once
        that is a tick or more; save what waits to be, if it is due."""
        newest = self._windows.watermark.newest
        elapsed = now - self._newest_since
        if newest == float("-inf") or elapsed < TICK_SECONDS:
            return self._step([], now)
        self._excuse_downtime(newest + elapsed)
        self._newest_since = now
        evaluated = self._evaluate(self._windows.advance(newest + elapsed))
        self._fire_early([])
        return self._step(evaluated, now)

    def swap_rules(self, ruleset: RuleSet, planner: Planner | None, now: float) -> Step:
        """Evaluate with `ruleset` from now on, keeping the alerts of the rules it still has
        (and plan notifications with `planner`, if given); checkpointed at once."""
        engine = self._new_engine(ruleset)
        self._drop(engine.restore(self._engine.state()))
        self._engine, self.ruleset = engine, ruleset
        self._fleet.use(ruleset.rules)
        if planner is not None:
            self._planner = planner
        elif self._planner is not None:
            self._planner.use(ruleset)
        self._early_start = None  # the new rules have seen nothing of the open minutes
        return Step([], self._drain_told(), self._checkpoint(now))

    def save(self, now: float) -> Step:
        """Checkpoint now, whatever waits (before the state is handed on to another)."""
        return Step([], self._drain_told(), self._checkpoint(now))

    def _new_engine(self, ruleset: RuleSet) -> Engine:
        return Engine(ruleset, self._condition_error, on_change=self._changed, fires_early=True)

    def _changed(self, episode: Episode) -> None:
        self._changes.append(episode)

    def _condition_error(self, spec: RuleSpec, event: Event, error: Exception) -> None:
        self.stats.condition_errors += 1

    def _misfits(self, events: list[Event]) -> _Counted:
        return _Counted(events, self.stats, self._told)

    def _contained(self, what: str, step: Callable[[_A], _T], argument: _A) -> _T | None:
        """Take a step of evaluation; if the input makes it fail, say so, count it and go on
        (a failure of sereno's own is not the input's doing: that stops the evaluator)."""
        try:
            return step(argument)
        except SerenoError:
            raise
        except Exception as error:
            self.stats.evaluation_errors += 1
            if self.stats.evaluation_errors <= MAX_REPORTED:
                self._told.append(f"sereno: {what} could not be evaluated, set aside: {error!r}")
            return None

    def _take_live(self, batch: tuple[int, list[Event], float]) -> Step:
        seq, events, now = batch
        return self._take(seq, events, self._misfits(events), now)

    def _take(self, seq: int, events: list[Event], misfits: Misfits, now: float) -> Step:
        newest = self._windows.watermark.newest
        evaluated = self._evaluate(self._windows.extend(events, misfits))
        self._seq = max(self._seq, seq)
        self.stats.events_evaluated += len(events)
        if self._windows.watermark.newest > newest:
            self._newest_since = now
        self._fire_early(events)
        return self._step(evaluated, now)

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

    def _evaluate(self, windows: Iterable[Window]) -> list[int]:
        """Evaluate the windows; the starts of those evaluated."""
        started = self._timer()
        evaluated: list[int] = []
        for window in windows:
            changed = len(self._changes)
            alerts = self._contained(f"the minute at {window.start}", self._engine.evaluate, window)
            if alerts is not None:  # evaluated, not set aside
                self._keep_minute(window, self._changes[changed:])
            self._remind(window.start)
            self.stats.windows_evaluated += 1
            self._on_window(self._timer() - started)
            evaluated.append(window.start)
        return evaluated

    def _keep_minute(self, window: Window, changes: list[Episode]) -> None:
        """Note what the rules found in an evaluated minute: the fleet, the alerts' minutes."""
        found = self._engine.found
        if found is None or found.start != window.start:
            return
        self._unfolded.append((window, found.alerts))
        open_alerts = self._engine.lifecycle.still_open()
        self._minutes += alert_minutes(found, open_alerts, changes, self._alert_ids.of)
        if window.start >= self._next_prune:
            self._prune_before = window.start - MINUTES_KEPT
            self._next_prune = window.start + PRUNE_EVERY

    def fleet(self) -> FleetSnapshot:
        """The fleet as of the latest minute evaluated: its minutes are taken in only now, so
        that the alerts they changed are saved and shown without waiting for it."""
        for window, alerts in self._unfolded:
            self._fleet.add(window, alerts)
        self._unfolded.clear()
        return self._fleet.snapshot()

    def _remind(self, start: int) -> None:
        """Plan the reminders of alerts still firing that are due in the minute at `start`,
        and the notices of those whose silence has ended."""
        previous = self._last_minute if self._last_minute is not None else start - WINDOW_SECONDS
        self._last_minute = start
        if self._planner is None:
            return
        if self._planner.reminds:
            self._reminders += self._planner.repeats(self._engine.firing(), start, previous)
        self._reminders += self._planner.unsilenced(self._engine.firing, start)
        self._reminders += self._planner.due_groups(start)

    def _step(self, evaluated: list[int], now: float) -> Step:
        """The step's answer: checkpointed at once after an evaluated minute; alerts fired
        early, once `checkpoint_every` has passed since the last checkpoint."""
        waited = now - self._saved_at >= self._checkpoint_every
        checkpoint = self._checkpoint(now) if evaluated or (self.unsaved and waited) else None
        return Step(evaluated, self._drain_told(), checkpoint)

    def _drain_told(self) -> list[str]:
        told, self._told = self._told, []
        return told

    def _checkpoint(self, now: float) -> Checkpoint:
        changes, self._changes = self._changes, []
        outgoing, self._reminders = self._reminders, []
        planner = self._planner
        told = [planner.for_changes([e]) if planner is not None else [] for e in changes]
        outgoing = [notice for notices in told for notice in notices] + outgoing
        groups = self._planner.groups.saved() if self._planner is not None else b""
        snapshot = Snapshot(self._seq, self._windows.watermark, self._engine.state(), groups)
        self._saved_at = now
        minutes, self._minutes = self._minutes, []
        prune_before, self._prune_before = self._prune_before, None
        return Checkpoint(
            snapshot, changes, outgoing, self.open_alerts(), minutes, prune_before, told
        )

    def _drop(self, episodes: list[Episode]) -> None:
        """The open alerts of rules no longer there end as dropped, from the next minute to
        be evaluated: told, and kept so in the history."""
        next_minute = self._windows.watermark.closed_before
        for episode in episodes:
            # an alert fired early in the very first minute has no minute evaluated before it
            ended = max(next_minute, episode.last_window + WINDOW_SECONDS)
            self._changed(dropped(episode, int(ended)))


class _AlertIds:
    """Episodes' short ids, each hashed once rather than once a minute it is open."""

    MOST = 100_000  # ids kept, beyond which they are forgotten and hashed again as needed

    def __init__(self) -> None:
        self._known: dict[tuple[AlertKey, int], str] = {}

    def of(self, episode: Episode) -> str:
        known, identity = self._known, (episode.key, episode.started)
        alert_id = known.get(identity)
        if alert_id is None:
            if len(known) >= self.MOST:
                known.clear()
            alert_id = known[identity] = episode.id
        return alert_id


def alert_minutes(
    found: WindowResult,
    open_alerts: Iterable[Episode],
    changes: Iterable[Episode],
    id_of: Callable[[Episode], str] = attrgetter("id"),
) -> list[AlertMinute]:
    """The minute of each alert open after it, and of each that it ended: the value its rule
    looked at, whether it matched, its severity and state."""
    start = found.start
    ended = {(e.key, e.started): e for e in changes if not e.is_open and e.ended == start}
    matched = {alert_key(alert) for alert in found.alerts}
    looked_at = found.looked_at
    return [
        AlertMinute(
            id_of(e), start, looked_at.get(e.key), e.key in matched, e.severity, e.state.value
        )
        for e in [*open_alerts, *ended.values()]
    ]
