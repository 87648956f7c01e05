"""Rules at work: each evaluates one closed window into alerts.

Besides its alerts, a rule says which alerts it *looked at* in the window: the servers (or, for
a majority rule, the services) it had data for. An alert that was looked at and did not match
is over; one that was not looked at (no data that minute) is neither raised nor over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from sereno.alerts import AbsentAlert, Alert, AlertKey, MajorityAlert, ServerAlert
from sereno.errors import ConditionError
from sereno.events import Event, Number
from sereno.rulefmt import RuleSpec
from sereno.windows import WINDOW_SECONDS, Window

ConditionErrorHandler = Callable[[RuleSpec, Event, ConditionError], None]


class RuleResult(NamedTuple):
    alerts: list[Alert]
    looked_at: set[AlertKey]


class Rule(Protocol):
    spec: RuleSpec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult: ...


def _matches(spec: RuleSpec, event: Event, on_error: ConditionErrorHandler) -> bool:
    try:
        return spec.condition.matches(event)
    except ConditionError as error:
        on_error(spec, event, error)
        return False


class ServerRule:
    """`majority: false`: every latest sample that matches the condition is an alert."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        spec = self.spec
        samples = window.latest_samples(spec.condition.components).values()
        alerts: list[Alert] = [
            ServerAlert(
                rule=spec.name,
                severity=spec.severity.name,
                timestamp=event.timestamp,
                component=event.component,
                value=event.value,
                server=event.server,
                service=event.service,
            )
            for event in samples
            if _matches(spec, event, on_error)
        ]
        looked_at = {AlertKey(spec.name, event.service, event.server) for event in samples}
        return RuleResult(alerts, looked_at)


class MajorityRule:
    """`majority: true`: alert once per service when matched / active servers > 1/2.

    Only active servers count, on both sides of the fraction; a server is active in a window
    when its latest event there says so.
    """

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        samples = window.latest_samples(self.spec.condition.components)
        if not samples:
            return RuleResult([], set())
        activity = window.activity
        active: dict[str, int] = {}
        for (service, _), is_active in activity.items():
            active[service] = active.get(service, 0) + is_active
        best: dict[str, dict[str, Event]] = {}
        looked_at: set[AlertKey] = set()
        for event in samples.values():
            if not activity[(event.service, event.server)]:
                continue
            looked_at.add(AlertKey(self.spec.name, event.service, ""))
            if not _matches(self.spec, event, on_error):
                continue
            servers = best.setdefault(event.service, {})
            current = servers.get(event.server)
            if current is None or event.value > current.value:
                servers[event.server] = event
        alerts: list[Alert] = [
            self._alert(window, servers, active[service])
            for service, servers in best.items()
            if 2 * len(servers) > active[service]
        ]
        return RuleResult(alerts, looked_at)

    def _alert(self, window: Window, servers: dict[str, Event], active: int) -> MajorityAlert:
        names = sorted(servers)
        highest = max((servers[name] for name in names), key=lambda event: event.value)
        spec = self.spec
        return MajorityAlert(
            rule=spec.name,
            severity=spec.severity.name,
            timestamp=window.start,
            component=highest.component,
            value=highest.value,
            service=highest.service,
            threshold=spec.threshold or "",
            matched_servers=names,
            matched=len(names),
            active=active,
        )


class AbsentRule:
    """`absent: DURATION`: a server that sent events the condition counts, then none for that
    long, is silent; it is silent no more once it sends one again.

    Silence is measured at the end of each minute evaluated, so it is found only while other
    servers still report: at the end of a file there is no later minute to be silent in.
    """

    def __init__(self, spec: RuleSpec) -> None:
        assert spec.absent is not None
        self.spec = spec
        self._absent = spec.absent
        self.last_seen: dict[tuple[str, str], Number] = {}
        """The time of the last counted event of each (service, server): the rule's state."""

    def excuse_until(self, since: Number) -> None:
        """Count every known server as seen at `since`: its silence starts again from there.

        The grace given after a restart, so that the time the service was down is not taken
        for the servers' silence.
        """
        for key, seen in self.last_seen.items():
            self.last_seen[key] = max(seen, since)

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        spec, last_seen = self.spec, self.last_seen
        looked_at: set[AlertKey] = set()
        for event in window.latest_samples(spec.condition.components).values():
            if _matches(spec, event, on_error):
                key = (event.service, event.server)
                last_seen[key] = max(last_seen.get(key, event.timestamp), event.timestamp)
                looked_at.add(AlertKey(spec.name, event.service, event.server))
        now = window.start + WINDOW_SECONDS
        alerts: list[Alert] = [
            AbsentAlert(
                rule=spec.name,
                severity=spec.severity.name,
                timestamp=window.start,
                server=server,
                service=service,
                last_seen=seen,
                value=now - seen,
            )
            for (service, server), seen in last_seen.items()
            if now - seen >= self._absent and AlertKey(spec.name, service, server) not in looked_at
        ]
        return RuleResult(alerts, looked_at)


def build_rule(spec: RuleSpec) -> Rule:
    if spec.absent is not None:
        return AbsentRule(spec)
    return MajorityRule(spec) if spec.majority else ServerRule(spec)
