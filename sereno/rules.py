"""Rules at work: each evaluates one closed window into alerts, purely."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sereno.alerts import Alert, MajorityAlert, ServerAlert
from sereno.errors import ConditionError
from sereno.events import Event
from sereno.rulefmt import RuleSpec
from sereno.windows import Window

ConditionErrorHandler = Callable[[RuleSpec, Event, ConditionError], None]


class Rule(Protocol):
    spec: RuleSpec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> list[Alert]: ...


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

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> list[Alert]:
        spec = self.spec
        return [
            ServerAlert(
                rule=spec.name,
                severity=spec.severity.name,
                timestamp=event.timestamp,
                component=event.component,
                value=event.value,
                server=event.server,
                service=event.service,
            )
            for event in window.latest_samples(spec.condition.components).values()
            if _matches(spec, event, on_error)
        ]


class MajorityRule:
    """`majority: true`: alert once per service when matched / active servers > 1/2.

    Only active servers count, on both sides of the fraction; a server is active in a window
    when its latest event there says so.
    """

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> list[Alert]:
        samples = window.latest_samples(self.spec.condition.components)
        if not samples:
            return []
        activity = window.activity
        active: dict[str, int] = {}
        for (service, _), is_active in activity.items():
            active[service] = active.get(service, 0) + is_active
        best: dict[str, dict[str, Event]] = {}
        for event in samples.values():
            if not activity[(event.service, event.server)]:
                continue
            if not _matches(self.spec, event, on_error):
                continue
            servers = best.setdefault(event.service, {})
            current = servers.get(event.server)
            if current is None or event.value > current.value:
                servers[event.server] = event
        return [
            self._alert(window, servers, active[service])
            for service, servers in best.items()
            if 2 * len(servers) > active[service]
        ]

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


def build_rule(spec: RuleSpec) -> Rule:
    return MajorityRule(spec) if spec.majority else ServerRule(spec)
