"""The fleet as the evaluated minutes show it: each server's last report, whether it was
active, the latest value of each component the rules read, and the rules that matched it in
the latest minute.

Pure: fed each evaluated minute with the alerts the rules found in it, on event time. A
server not heard of for `forget_after` seconds is forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert
from sereno.engine.windows import WINDOW_SECONDS, Window
from sereno.events.schema import Number
from sereno.rules.rulefmt import RuleSpec

DEFAULT_QUIET_AFTER = 120.0  # seconds without a report after which a server is quiet
FORGET_AFTER = 86_400.0  # seconds without a report after which a server is forgotten

ServerKey = tuple[str, str]  # service, server


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


class _Server:
    """What is known of one server: updated in place, minute by minute."""

    __slots__ = ("active", "last_report", "values")

    def __init__(self, last_report: float, active: bool) -> None:
        self.last_report = last_report
        self.active = active
        self.values: dict[str, tuple[Number, float]] = {}  # component: (value, at)


class Fleet:
    """Each server as the evaluated minutes left it."""

    def __init__(
        self,
        rules: Sequence[RuleSpec],
        quiet_after: float = DEFAULT_QUIET_AFTER,
        forget_after: float = FORGET_AFTER,
    ) -> None:
        self._quiet_after, self._forget_after = quiet_after, forget_after
        self._servers: dict[ServerKey, _Server] = {}
        self._matches: dict[ServerKey, dict[str | None, list[str]]] = {}  # component: rules
        self._evaluated_before: float | None = None
        self.use(rules)

    def use(self, rules: Sequence[RuleSpec]) -> None:
        """Read the components of `rules` from now on."""
        self._order = {spec.name: rank for rank, spec in enumerate(rules)}
        self._rule_components = {spec.name: spec.components for spec in rules}
        read: set[str] = set()
        for spec in rules:
            if spec.components is None:
                self._components: frozenset[str] | None = None
                break
            read |= spec.components
        else:
            self._components = frozenset(read)

    def add(self, window: Window, alerts: Iterable[Alert]) -> None:
        """Take an evaluated minute: its events, and the alerts its rules found in it."""
        components, servers = self._components, self._servers
        activity = window.activity
        for event in window.latest.values():
            key = (event.service, event.server)
            server = servers.get(key)
            if server is None:
                server = servers[key] = _Server(event.timestamp, activity[key])
            elif event.timestamp >= server.last_report:
                server.last_report = event.timestamp
                server.active = activity[key]
            if components is None or event.component in components:
                known = server.values.get(event.component)
                if known is None or event.timestamp >= known[1]:
                    server.values[event.component] = (event.value, event.timestamp)
        self._evaluated_before = window.start + WINDOW_SECONDS
        self._matches = self._matched(alerts)
        self._forget(self._evaluated_before - self._forget_after)

    def _matched(self, alerts: Iterable[Alert]) -> dict[ServerKey, dict[str | None, list[str]]]:
        """The rules that matched each server's components, by component (None: every one)."""
        matches: dict[ServerKey, dict[str | None, list[str]]] = {}
        for alert in alerts:
            for key, component in self._covered(alert):
                rules = matches.setdefault(key, {}).setdefault(component, [])
                if alert.rule not in rules:
                    rules.append(alert.rule)
        return matches

    def _covered(self, alert: Alert) -> Iterable[tuple[ServerKey, str | None]]:
        """The (server, component) an alert covers: a per-server alert its sample's; a
        majority alert the rule's components on each matched server, a silence alert on
        its server."""
        if isinstance(alert, MajorityAlert):
            servers = [(alert.service, server) for server in alert.matched_servers]
        elif isinstance(alert, AbsentAlert):
            servers = [(alert.service, alert.server)]
        else:
            return [((alert.service, alert.server), alert.component)]
        components = self._rule_components.get(alert.rule)
        named: list[str | None] = [*sorted(components)] if components is not None else [None]
        return [(server, component) for server in servers for component in named]

    def _forget(self, before: float) -> None:
        gone = [key for key, server in self._servers.items() if server.last_report < before]
        for key in gone:
            del self._servers[key]

    def view(self) -> FleetView:
        """The fleet now, by service, server and component."""
        seen = tuple(self._seen(key, self._servers[key]) for key in sorted(self._servers))
        return FleetView(self._evaluated_before, self._quiet_after, seen)

    def _seen(self, key: ServerKey, server: _Server) -> ServerSeen:
        evaluated_before = self._evaluated_before
        quiet = evaluated_before is not None and (
            server.last_report < evaluated_before - self._quiet_after
        )
        matches = self._matches.get(key, {})
        every = matches.get(None, [])
        readings = tuple(
            Reading(component, value, at, self._in_order([*matches.get(component, []), *every]))
            for component, (value, at) in sorted(server.values.items())
        )
        return ServerSeen(*key, server.last_report, server.active, quiet, readings)

    def _in_order(self, rules: list[str]) -> tuple[str, ...]:
        order = self._order
        return tuple(sorted(set(rules), key=lambda rule: order.get(rule, len(order))))
