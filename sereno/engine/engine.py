"""The engine: events in, alerts out, through windows and rules.

Batch and service modes share it; it never reads the clock or touches I/O. Time is the
events' own, and problems are handed to callbacks for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Protocol

import msgspec

from sereno.engine.alerts import Alert, AlertKey
from sereno.engine.evaluate import AbsentRule, ConditionErrorHandler, MajorityRule, build_rule
from sereno.engine.lifecycle import (
    Episode,
    FlapHistory,
    Lifecycle,
    State,
    WindowResult,
    episode_order,
    episodes_in_order,
)
from sereno.engine.windows import Window, Windows, in_batches
from sereno.events.reader import EventBatch
from sereno.events.schema import Event, Number
from sereno.rules.rulefmt import RuleSet

LateEventHandler = Callable[[Event], None]
BATCH_SIZE = 4096


AlertOrder = tuple[Number, int, str, str]
_first, _second = itemgetter(0), itemgetter(1)


def _order_keys(alerts: list[Alert], rank: int, majority: bool) -> list[AlertOrder]:
    """Where each of a rule's alerts (of rank `rank`) goes among a minute's: by time, then
    rule order, service, server; without a call an alert."""
    if majority:
        return [(alert.timestamp, rank, alert.service, "") for alert in alerts]
    return [(a.timestamp, rank, a.service, a.server) for a in alerts]  # type: ignore[union-attr]


class RecordMisfits(Protocol):
    """Told of the events of the batches that the windows cannot take."""

    def late_event(self, batch: EventBatch, index: int) -> None:
        """`batch.events[index]` came after its minute was evaluated."""

    def ahead_event(self, batch: EventBatch, index: int, fleet_time: float) -> None:
        """`batch.events[index]` is far ahead of the rest of the fleet (at `fleet_time`)."""


class _InBatch:
    """The misfits of one batch, told by their index in it."""

    def __init__(self, misfits: RecordMisfits, batch: EventBatch) -> None:
        self._misfits, self._batch = misfits, batch

    def late(self, index: int) -> None:
        self._misfits.late_event(self._batch, index)

    def ahead(self, index: int, fleet_time: float) -> None:
        self._misfits.ahead_event(self._batch, index, fleet_time)


class _AllLate:
    """Record misfits for callers that tell only late events: both kinds count as late."""

    def __init__(self, on_late: LateEventHandler) -> None:
        self._on_late = on_late

    def late_event(self, batch: EventBatch, index: int) -> None:
        self._on_late(batch.events[index])

    def ahead_event(self, batch: EventBatch, index: int, fleet_time: float) -> None:
        self._on_late(batch.events[index])


class EngineState(msgspec.Struct):
    """What the engine carries from one minute to the next: the open alerts (firing and
    pending) and, per silence rule, when each (service, server) was last seen."""

    episodes: list[Episode] = msgspec.field(default_factory=list)
    last_seen: dict[str, list[tuple[str, str, Number]]] = msgspec.field(default_factory=dict)
    flapping: list[FlapHistory] = msgspec.field(default_factory=list)


class Engine:
    """Evaluates a rule set over closed windows, and tracks its alerts across them."""

    def __init__(
        self,
        ruleset: RuleSet,
        on_condition_error: ConditionErrorHandler,
        keep_episodes: bool = False,
        on_change: Callable[[Episode], None] | None = None,
        fires_early: bool = False,
        own_part: Callable[[Window], Window] | None = None,
        alerts_only: bool = False,
    ) -> None:
        """`fires_early`: `fire_early` will be called (a live stream), so the rules keep what
        it needs. `own_part`: the part of each window to evaluate (of one of several jobs).
        `alerts_only`: only each minute's firing alerts are asked for, never the episodes or
        the state."""
        self.ruleset = ruleset
        self.lifecycle = Lifecycle(
            ruleset.rules,
            keep_resolved=keep_episodes,
            on_change=on_change,
            alerts_only=alerts_only,
        )
        # when the lifecycle tracks nothing, the rules need find nothing but their alerts
        untracked = self.lifecycle.untracked
        self._rules = [build_rule(spec, fires_early, untracked) for spec in ruleset.rules]
        self.rule_order = {spec.name: rank for rank, spec in enumerate(ruleset.rules)}
        self._on_condition_error = on_condition_error
        self._own_part = own_part
        self.window: Window | None = None
        """The window being evaluated (this engine's part of it), while it is."""
        self.found: WindowResult | None = None
        """What the rules found in the latest minute evaluated, before the lifecycle: which
        servers and components they matched, the values they looked at."""

    def state(self) -> EngineState:
        last_seen = {
            rule.spec.name: [(*key, seen) for key, seen in rule.last_seen.items()]
            for rule in self._silence_rules()
        }
        return EngineState(self.lifecycle.still_open(), last_seen, self.lifecycle.flap_histories())

    def restore(self, state: EngineState) -> list[Episode]:
        """Carry on from `state` (of an earlier run, or of the rules before a reload): what
        belongs to rules this engine does not have, or no longer as silence rules, is left;
        the open alerts left are returned."""
        for rule in self._silence_rules():
            for service, server, seen in state.last_seen.get(rule.spec.name, ()):
                rule.last_seen[(service, server)] = seen
        return self.lifecycle.restore(state.episodes, state.flapping)

    def excuse_silence_until(self, since: Number) -> None:
        """Silence rules start counting every known server's silence again at `since`."""
        for rule in self._silence_rules():
            rule.excuse_until(since)

    def _silence_rules(self) -> list[AbsentRule]:
        return [rule for rule in self._rules if isinstance(rule, AbsentRule)]

    def fire_early(self, start: int, events: Sequence[Event]) -> None:
        """Fire the alerts that `events`, new in the oldest minute not yet evaluated (at
        `start`), make already, without waiting for the minute to close."""
        for rule in self._rules:
            for alert in rule.early(start, events):
                self.lifecycle.fire_early(alert, start)

    def evaluate(self, window: Window) -> list[Alert]:
        """The window's firing alerts in order: time, then rule order, service, server."""
        if self._own_part is not None:
            window = self._own_part(window)
        self.window = window
        try:
            self.found = found = self.evaluate_window(window)
        finally:
            self.window = None  # not kept: a minute's events are the most memory a run holds
        return self.lifecycle.update(found)

    def evaluate_window(self, window: Window) -> WindowResult:
        """What the rules find in the window, before the lifecycle."""
        alerts: list[Alert] = []
        keys: list[AlertOrder] = []
        looked_at: dict[AlertKey, Number] = {}
        recovered: set[AlertKey] = set()
        unmatched: dict[AlertKey, tuple[str, ...]] = {}
        for rank, rule in enumerate(self._rules):
            result = rule.evaluate(window, self._on_condition_error)
            alerts.extend(result.alerts)
            keys.extend(_order_keys(result.alerts, rank, isinstance(rule, MajorityRule)))
            looked_at.update(result.looked_at)
            if result.recovered is not None:
                recovered.update(result.recovered)
            unmatched.update(result.unmatched)
        in_order = sorted(zip(keys, alerts, strict=True), key=_first)
        return WindowResult(
            window.start,
            list(map(_second, in_order)),
            looked_at,
            recovered,
            unmatched,
            order=list(map(_first, in_order)),
        )

    def run(
        self, events: Iterable[Event], windows: Windows, on_late: LateEventHandler
    ) -> Iterator[list[Alert]]:
        """Feed a stream of events through `windows`; yield each closed window's alerts.
        Events late or ahead of the fleet go to `on_late`."""
        batches = (
            EventBatch(chunk, range(len(chunk)), "", in_array=True)
            for chunk in in_batches(events, BATCH_SIZE)
        )
        return self.run_batches(batches, windows, _AllLate(on_late))

    def run_batches(
        self, batches: Iterable[EventBatch], windows: Windows, misfits: RecordMisfits
    ) -> Iterator[list[Alert]]:
        """`run` for events that come in batches, as readers give them."""
        for batch in batches:
            yield from self.run_batch(batch, windows, misfits)
        for window in windows.close_all():
            yield self.evaluate(window)

    def run_batch(
        self, batch: EventBatch, windows: Windows, misfits: RecordMisfits
    ) -> Iterator[list[Alert]]:
        """One batch into `windows`: the alerts of each window it closes (a live stream's step)."""
        misfits_in_batch = _InBatch(misfits, batch)
        for window in windows.extend(batch.events, misfits_in_batch, batch.timestamps):
            yield self.evaluate(window)

    def episode_order(self, episode: Episode) -> tuple[int, int, str, str]:
        """Where an episode goes among others: by start, then as alerts go."""
        return episode_order(episode, self.rule_order)

    def take_resolved(self) -> list[Episode]:
        """The episodes resolved since the last call (with `keep_episodes`), in the order
        alerts are listed (by start, rule order, service, server)."""
        return episodes_in_order(self.lifecycle.take_resolved(), self.rule_order)

    def firing(self) -> list[Episode]:
        """The episodes still firing (with data or without), in the order alerts are listed."""
        firing = [e for e in self.lifecycle.still_open() if e.state is not State.PENDING]
        return episodes_in_order(firing, self.rule_order)

    def episodes(self) -> list[Episode]:
        """The episodes resolved since the last call, then those still firing."""
        return [*self.take_resolved(), *self.firing()]
