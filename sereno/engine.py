"""The engine: events in, alerts out, through windows and rules.

Batch and service modes share it; it never reads the clock or touches I/O. Time is the
events' own, and problems are handed to callbacks for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

from sereno.alerts import Alert
from sereno.events import Event, EventBatch
from sereno.rulefmt import RuleSet
from sereno.rules import ConditionErrorHandler, build_rule
from sereno.windows import Window, Windows, in_batches

LateEventHandler = Callable[[Event], None]
LateRecordHandler = Callable[[EventBatch, int], None]
"""Told of the late event `batch.events[index]`."""
BATCH_SIZE = 4096


class Engine:
    """Evaluates a rule set over closed windows."""

    def __init__(self, ruleset: RuleSet, on_condition_error: ConditionErrorHandler) -> None:
        self.ruleset = ruleset
        self._rules = [build_rule(spec) for spec in ruleset.rules]
        self._rank = {spec.name: rank for rank, spec in enumerate(ruleset.rules)}
        self._on_condition_error = on_condition_error

    def evaluate(self, window: Window) -> list[Alert]:
        """The window's alerts in order: time, then rule order, then service, then server."""
        alerts = [
            alert
            for rule in self._rules
            for alert in rule.evaluate(window, self._on_condition_error)
        ]
        alerts.sort(key=self._order)
        return alerts

    def _order(self, alert: Alert) -> tuple[float, int, str, str]:
        return (
            alert.timestamp,
            self._rank[alert.rule],
            alert.service,
            getattr(alert, "server", ""),
        )

    def run(
        self, events: Iterable[Event], windows: Windows, on_late: LateEventHandler
    ) -> Iterator[list[Alert]]:
        """Feed a stream of events through `windows`; yield each closed window's alerts."""
        batches = (
            EventBatch(chunk, range(len(chunk)), "", in_array=True)
            for chunk in in_batches(events, BATCH_SIZE)
        )
        return self.run_batches(batches, windows, lambda batch, index: on_late(batch.events[index]))

    def run_batches(
        self, batches: Iterable[EventBatch], windows: Windows, on_late: LateRecordHandler
    ) -> Iterator[list[Alert]]:
        """`run` for events that come in batches, as readers give them."""
        for batch in batches:
            for window in windows.extend(batch.events, partial(on_late, batch)):
                yield self.evaluate(window)
        for window in windows.close_all():
            yield self.evaluate(window)
