"""The fleet as the evaluated minutes show it: each server's last report of a component the
rules read, whether it was active (by its latest event), the latest value of each component
the rules read, and the rules that matched it in the latest minute.

Pure: fed each evaluated minute with the alerts the rules found in it, on event time. A
server not heard of for `forget_after` seconds is forgotten.

Taking a minute in costs a few steps a server; a `FleetSnapshot` of it, made at each
checkpoint, copies two flat tables of immutable values (no server's record is changed in
place), and is turned into a `FleetView` only when someone asks, once: the evaluation does
not pay for a view nobody reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from operator import itemgetter
from typing import NamedTuple

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert
from sereno.engine.windows import WINDOW_SECONDS, Window
from sereno.events.schema import Number
from sereno.rules.rulefmt import RuleSpec

DEFAULT_QUIET_AFTER = 120.0  # seconds without a report after which a server is quiet
FORGET_AFTER = 86_400.0  # seconds without a report after which a server is forgotten

ServerKey = tuple[str, str]  # service, server
ComponentKey = tuple[str, str, str]  # service, server, component
_Report = tuple[float, bool]  # a server's last report, and whether it was active then
# a rule's alert on a server: the rule's rank, its name and the components it covers (None:
# every one)
_Match = tuple[int, str, frozenset[str] | tuple[str] | None]


class Reading(NamedTuple):
    """A component's latest value on a server, when it was sent, and the rules whose alerts
    covered it in the latest minute evaluated (in the rules' order)."""

    component: str
    value: Number
    at: float
    matched_by: tuple[str, ...]


class ServerSeen(NamedTuple):
    service: str
    server: str
    last_report: float
    active: bool
    quiet: bool
    readings: tuple[Reading, ...]  # by component


class FleetView(NamedTuple):
    """The fleet as of `evaluated_before` (None: no minute evaluated yet), by service and
    server: an immutable value, published as it is."""

    evaluated_before: float | None
    quiet_after: float
    servers: tuple[ServerSeen, ...]


class FleetSnapshot:
    """The fleet as one checkpoint left it: tables no one changes after, and the view of them
    (made once, when first asked for: two threads asking at once make the same view)."""

    def __init__(
        self,
        evaluated_before: float | None,
        quiet_after: float,
        reports: dict[ServerKey, _Report],
        values: dict[ComponentKey, tuple[Number, float]],
        matches: dict[ServerKey, list[_Match]],
    ) -> None:
        self._evaluated_before, self._quiet_after = evaluated_before, quiet_after
        self._reports, self._values, self._matches = reports, values, matches

    @cached_property
    def view(self) -> FleetView:
        """The fleet, by service, server and component."""
        evaluated_before = self._evaluated_before
        quiet_before = float("-inf")
        if evaluated_before is not None:
            quiet_before = evaluated_before - self._quiet_after
        readings: dict[ServerKey, list[Reading]] = {}
        for (service, server, component), (value, at) in sorted(self._values.items()):
            matches = self._matches.get((service, server))
            matched_by = _matched_by(matches, component) if matches is not None else ()
            readings.setdefault((service, server), []).append(
                Reading(component, value, at, matched_by)
            )
        seen = tuple(
            ServerSeen(*key, *report, report[0] < quiet_before, tuple(readings[key]))
            for key, report in sorted(self._reports.items())
        )
        return FleetView(evaluated_before, self._quiet_after, seen)


class Fleet:
    """Each server as the evaluated minutes left it."""

    def __init__(
        self,
        rules: Sequence[RuleSpec],
        quiet_after: float = DEFAULT_QUIET_AFTER,
        forget_after: float = FORGET_AFTER,
    ) -> None:
        self._quiet_after, self._forget_after = quiet_after, forget_after
        self._reports: dict[ServerKey, _Report] = {}
        self._values: dict[ComponentKey, tuple[Number, float]] = {}
        self._matches: dict[ServerKey, list[_Match]] = {}  # in the latest minute
        self._evaluated_before: float | None = None
        self._snapshot: FleetSnapshot | None = None  # the latest, until a minute changes it
        self.use(rules)

    def use(self, rules: Sequence[RuleSpec]) -> None:
        """Read the components of `rules` from now on."""
        self._order = {spec.name: rank for rank, spec in enumerate(rules)}
        self._rule_components = {spec.name: spec.components for spec in rules}
        read = set(self._rule_components.values())
        # the components the rules read, as sets the rules ask a window for
        self._read: list[frozenset[str] | None] = [None] if None in read else list(read)

    def add(self, window: Window, alerts: Iterable[Alert]) -> None:
        """Take an evaluated minute: its events, and the alerts its rules found in it."""
        reports, values, activity = self._reports, self._values, window.activity
        # the latest samples the rules' evaluation has just picked, of the components they
        # read: most events may be of others, and going through them all would cost as much
        # again as the evaluation
        for components in self._read:
            for event in window.latest_samples(components):
                service, server, at = event.service, event.server, event.timestamp
                report = reports.get((service, server))
                if report is None or at >= report[0]:
                    reports[(service, server)] = (at, activity[(service, server)])
                key = (service, server, event.component)
                known = values.get(key)
                if known is None or at >= known[1]:
                    values[key] = (event.value, at)
        self._evaluated_before = window.start + WINDOW_SECONDS
        self._matches = self._matched(alerts)
        self._snapshot = None
        self._forget(self._evaluated_before - self._forget_after)

    def _matched(self, alerts: Iterable[Alert]) -> dict[ServerKey, list[_Match]]:
        """What each server's alerts cover: a per-server alert its sample's component; a
        majority alert the rule's components on each matched server, a silence alert on its
        server."""
        matches: dict[ServerKey, list[_Match]] = {}
        order, components = self._order, self._rule_components
        for alert in alerts:
            rank = order.get(alert.rule, len(order))
            if isinstance(alert, MajorityAlert):
                match = (rank, alert.rule, components.get(alert.rule))
                for server in alert.matched_servers:
                    matches.setdefault((alert.service, server), []).append(match)
                continue
            covered: frozenset[str] | tuple[str] | None
            if isinstance(alert, AbsentAlert):
                covered = components.get(alert.rule)
            else:
                covered = (alert.component,)
            matches.setdefault((alert.service, alert.server), []).append(
                (rank, alert.rule, covered)
            )
        return matches

    def _forget(self, before: float) -> None:
        gone = {key for key, report in self._reports.items() if report[0] < before}
        if gone:
            for key in gone:
                del self._reports[key]
            self._values = {k: v for k, v in self._values.items() if k[:2] not in gone}

    def snapshot(self) -> FleetSnapshot:
        """The fleet now, as a value that stays as it is while the fleet moves on."""
        if self._snapshot is None:
            self._snapshot = FleetSnapshot(
                self._evaluated_before,
                self._quiet_after,
                dict(self._reports),
                dict(self._values),
                self._matches,  # made anew each minute
            )
        return self._snapshot

    def view(self) -> FleetView:
        """The fleet now, by service, server and component."""
        return self.snapshot().view


def _matched_by(matches: list[_Match], component: str) -> tuple[str, ...]:
    """The rules whose alerts cover `component`, once each, in the rules' order."""
    in_order = sorted(matches, key=itemgetter(0))
    rules = (rule for _, rule, covered in in_order if covered is None or component in covered)
    return tuple(dict.fromkeys(rules))
