"""Rules at work: each evaluates one closed window into alerts.

Besides its alerts, a rule says which alerts it *looked at* in the window: the servers (or, for
a majority rule, the services) it had data for, with the value it saw. An alert that was looked
at and did not match is over (at that value); one that was not looked at (no data that minute)
is neither raised nor over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import groupby
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple, Protocol

from sereno.engine.alerts import (
    AbsentAlert,
    Alert,
    AlertKey,
    MajorityAlert,
    ServerAlert,
    alert_key,
    extra_labels,
)
from sereno.engine.windows import WINDOW_SECONDS, SampleKey, Window
from sereno.events.schema import Event, Number
from sereno.rules.conditions import Condition, ConditionError
from sereno.rules.rulefmt import RuleSpec

ConditionErrorHandler = Callable[[RuleSpec, Event, ConditionError], None]

_service = attrgetter("service")
_server = attrgetter("server")
_value = attrgetter("value")
_PLAIN = {Event}  # events without extra fields, whose alerts have no labels


class RuleResult(NamedTuple):
    """A rule's findings in a window: its alerts; the alerts it looked at, with the value it
    saw; of those, the ones its recovery condition holds for (None: every one it looked at,
    for a rule without one); and, for a majority rule, the servers of each service that
    reported and did not match."""

    alerts: list[Alert]
    looked_at: dict[AlertKey, Number]
    recovered: set[AlertKey] | None = None
    unmatched: Mapping[AlertKey, tuple[str, ...]] = MappingProxyType({})


class Rule(Protocol):
    spec: RuleSpec

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult: ...

    def early(self, start: int, events: Sequence[Event]) -> list[Alert]:
        """The alerts that `events`, new in the minute at `start` (not evaluated yet, the
        oldest such), make already: what can be told before the minute closes."""
        ...


def _holds(
    spec: RuleSpec, condition: Condition, event: Event, on_error: ConditionErrorHandler
) -> bool:
    try:
        return condition.matches(event)
    except ConditionError as error:
        on_error(spec, event, error)
        return False


def _matches(spec: RuleSpec, event: Event, on_error: ConditionErrorHandler) -> bool:
    """`_holds` of the rule's (first level's) condition, without the extra call: it runs for
    most events."""
    try:
        return spec.condition.matches(event)
    except ConditionError as error:
        on_error(spec, event, error)
        return False


def _select(
    spec: RuleSpec, events: Sequence[Event], on_error: ConditionErrorHandler
) -> list[Event]:
    """The events that meet the rule's (first level's) condition, in one call."""
    return spec.condition.select(events, lambda event, error: on_error(spec, event, error))


def _looked_at(rule: str, samples: Sequence[Event]) -> dict[AlertKey, Number]:
    """Each sample's alert key, with its value (of a server's several samples, the last).

    The keys are plain tuples, equal to their `AlertKey` and made without a call each: this
    runs for every sample of every minute."""
    return {(rule, e.service, e.server): e.value for e in samples}  # type: ignore[misc]


def _level(spec: RuleSpec, event: Event, on_error: ConditionErrorHandler) -> int:
    """The most severe of the rule's levels whose condition the event meets; -1 if none."""
    levels = spec.levels
    if len(levels) == 1:  # most rules: one condition, no loop
        return 0 if _matches(spec, event, on_error) else -1
    for index in range(len(levels) - 1, -1, -1):
        if _holds(spec, levels[index].condition, event, on_error):
            return index
    return -1


def _recovers(spec: RuleSpec, event: Event, on_error: ConditionErrorHandler) -> bool:
    assert spec.recover_when is not None
    return _holds(spec, spec.recover_when, event, on_error)


def _quietly(spec: RuleSpec, event: Event, error: ConditionError) -> None:
    """Early looks are told nothing of condition errors: the minute's evaluation reports them."""


def _of_components(spec: RuleSpec, events: Iterable[Event]) -> Iterable[Event]:
    components = spec.components
    if components is None:
        return events
    return (event for event in events if event.component in components)


class ServerRule:
    """`majority: false`: every latest sample that matches a level's condition is an alert,
    at the most severe level it matches."""

    def __init__(self, spec: RuleSpec, alerts_only: bool = False) -> None:
        self.spec = spec
        self._alerts_only = alerts_only

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        spec = self.spec
        samples = window.latest_samples(spec.components)
        looked_at = {} if self._alerts_only else _looked_at(spec.name, samples)
        if len(spec.levels) == 1 and spec.recover_when is None:
            matching = _select(spec, samples, on_error)
            return RuleResult(self._alerts(matching), looked_at)
        alerts: list[Alert] = []
        recovered = set()
        for event in samples:
            level = _level(spec, event, on_error)
            if level >= 0:
                alerts.append(self._alert(event, level))
            elif spec.recover_when is not None and _recovers(spec, event, on_error):
                recovered.add(AlertKey(spec.name, event.service, event.server))
        if spec.recover_when is None:
            return RuleResult(alerts, looked_at)
        # a server recovers when one of its samples meets the condition and none matches
        recovered.difference_update(map(alert_key, alerts))
        return RuleResult(alerts, looked_at, recovered)

    def _alerts(self, matching: list[Event]) -> list[Alert]:
        """The alerts of a rule of one level, one per matching sample."""
        if not set(map(type, matching)) <= _PLAIN:  # extra fields: labels to copy
            return [self._alert(event, 0) for event in matching]
        name, severity = self.spec.name, self.spec.levels[0].severity.name
        return [
            ServerAlert(name, severity, e.timestamp, e.component, e.value, e.server, e.service)
            for e in matching
        ]

    def early(self, start: int, events: Sequence[Event]) -> list[Alert]:
        """Each event that matches, as it comes (a later sample of the same minute may
        still undo it when the minute is evaluated)."""
        spec = self.spec
        alerts: list[Alert] = []
        for event in _of_components(spec, events):
            level = _level(spec, event, _quietly)
            if level >= 0:
                alerts.append(self._alert(event, level))
        return alerts

    def _alert(self, event: Event, level: int) -> ServerAlert:
        spec = self.spec
        return ServerAlert(
            rule=spec.name,
            severity=spec.levels[level].severity.name,
            timestamp=event.timestamp,
            component=event.component,
            value=event.value,
            server=event.server,
            service=event.service,
            labels=extra_labels(event),
        )


class MajorityRule:
    """`majority: true`: alert once per service when matched / active servers > 1/2.

    Only active servers count, on both sides of the fraction; a server is active in a window
    when its latest event there says so.
    """

    def __init__(
        self, spec: RuleSpec, fires_early: bool = False, alerts_only: bool = False
    ) -> None:
        self.spec = spec
        self._fires_early = fires_early
        self._alerts_only = alerts_only
        self._active_before: dict[str, frozenset[str]] = {}
        """Each service's active servers in the latest minute evaluated with data for it
        (kept only when it fires early)."""
        self._early = _EarlyMinute(-1)

    def evaluate(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        spec = self.spec
        if not window.latest_samples(spec.components):
            return RuleResult([], {})
        if self._fires_early:
            self._remember_active(window.activity)
        if len(spec.levels) == 1 and spec.recover_when is None:
            return self._evaluate_plain(window, on_error)
        activity = window.activity
        active = window.active_servers
        reported: dict[str, set[str]] = {}
        best: dict[str, dict[str, _Match]] = {}
        recovering: dict[str, set[str]] = {}
        looked_at: dict[AlertKey, Number] = {}  # with the highest value of its active servers
        for event in window.latest_samples(spec.components):
            if not activity[(event.service, event.server)]:
                continue
            service = event.service
            key = AlertKey(spec.name, service, "")
            looked_at[key] = max(looked_at.get(key, event.value), event.value)
            reported.setdefault(service, set()).add(event.server)
            level = _level(spec, event, on_error)
            if level >= 0:
                _keep_highest(best.setdefault(service, {}), event, level)
            elif spec.recover_when is not None and _recovers(spec, event, on_error):
                recovering.setdefault(service, set()).add(event.server)
        alerts: list[Alert] = []
        unmatched: dict[AlertKey, tuple[str, ...]] = {}
        for service, servers in best.items():
            alert = self._decide(window.start, servers, active[service])
            if alert is not None:
                alerts.append(alert)
                unmatched[alert_key(alert)] = _others(reported[service], alert)
        recovered = None
        if spec.recover_when is not None:
            recovered = {
                AlertKey(spec.name, service, "")
                for service in reported
                if self._recovered(
                    recovering.get(service, set()), best.get(service, {}), active[service]
                )
            }
        return RuleResult(alerts, looked_at, recovered, unmatched)

    def _evaluate_plain(self, window: Window, on_error: ConditionErrorHandler) -> RuleResult:
        """`evaluate` for a rule of one level and no recovery condition (most rules): the
        condition over all the active samples at once, then the services one by one."""
        spec = self.spec
        samples = window.active_samples(spec.components)
        matching = _select(spec, samples, on_error)
        reported = {} if self._alerts_only else _by_service(samples)
        looked_at: dict[AlertKey, Number] = {
            AlertKey(spec.name, service, ""): max(map(_value, events))
            for service, events in reported.items()
        }
        alerts: list[Alert] = []
        unmatched: dict[AlertKey, tuple[str, ...]] = {}
        active = window.active_servers
        for service, events in _by_service(matching).items():
            alert = self._decide_plain(window.start, events, active[service])
            if alert is not None:
                alerts.append(alert)
                if not self._alerts_only:
                    unmatched[alert_key(alert)] = _others(map(_server, reported[service]), alert)
        return RuleResult(alerts, looked_at, None, unmatched)

    def _recovered(self, recovering: set[str], matching: dict[str, _Match], active: int) -> bool:
        """Whether the active servers that do not meet the recovery condition are no longer
        a quorum."""
        return not self.spec.quorum.met(active - len(recovering.difference(matching)), active)

    def _remember_active(self, activity: dict[tuple[str, str], bool]) -> None:
        active: dict[str, set[str]] = {}
        for (service, server), is_active in activity.items():
            servers = active.setdefault(service, set())
            if is_active:
                servers.add(server)
        self._active_before.update((service, frozenset(s)) for service, s in active.items())

    def early(self, start: int, events: Sequence[Event]) -> list[Alert]:
        """A service's alert as soon as every server active in its previous minute has sent
        a sample of the rule's components in this one, and most of the active ones match.
        A service is told once a minute; the minute's evaluation has the last word."""
        if start != self._early.start:
            self._early = _EarlyMinute(start)
        early = self._early
        touched = early.add(_of_components(self.spec, events))
        alerts: list[Alert] = []
        for service in touched - early.told:
            latest = early.latest[service]
            expected = self._active_before.get(service)
            if not expected or not expected <= {server for server, _ in latest}:
                continue  # some server is still to report
            alert = self._early_alert(start, latest.values())
            if alert is not None:
                early.told.add(service)
                alerts.append(alert)
        return alerts

    def _early_alert(self, start: int, samples: Iterable[Event]) -> MajorityAlert | None:
        in_time_order = sorted(samples, key=lambda event: event.timestamp)
        newest = {event.server: event for event in in_time_order}  # a server's activity
        active = {server for server, event in newest.items() if event.active}
        best: dict[str, _Match] = {}
        for event in in_time_order:
            if event.server in active:
                level = _level(self.spec, event, _quietly)
                if level >= 0:
                    _keep_highest(best, event, level)
        return self._decide(start, best, len(active))

    def _decide(self, start: int, servers: dict[str, _Match], active: int) -> MajorityAlert | None:
        """The service's alert, at the most severe level that a quorum of its active servers
        meet (at that level or above); None if there is none, or too few active servers."""
        spec = self.spec
        if active < spec.min_active:
            return None
        for level in range(len(spec.levels) - 1, -1, -1):
            matched = {name: match[1] for name, match in servers.items() if match[0] >= level}
            if spec.quorum.met(len(matched), active):
                return self._alert(start, matched, active, level)
        return None

    def _decide_plain(self, start: int, matching: list[Event], active: int) -> MajorityAlert | None:
        """`_decide` for a rule of one level, from the service's matching samples: its
        matched servers are the servers of the samples."""
        spec = self.spec
        if active < spec.min_active:
            return None
        servers = {event.server: event for event in matching}
        if len(servers) < len(matching):  # a server matched with several components
            servers = _highest_by_server(matching)
        if not spec.quorum.met(len(servers), active):
            return None
        return self._alert(start, servers, active, 0)

    def _alert(
        self, start: int, servers: dict[str, Event], active: int, level: int
    ) -> MajorityAlert:
        names = sorted(servers)
        # the first of the highest, by name
        highest = max(map(servers.__getitem__, names), key=_value)
        spec = self.spec
        return MajorityAlert(
            rule=spec.name,
            severity=spec.levels[level].severity.name,
            timestamp=start,
            component=highest.component,
            value=highest.value,
            service=highest.service,
            threshold=spec.threshold or "",
            matched_servers=names,
            matched=len(names),
            active=active,
        )


# A server's match in a minute: its most severe level, and its highest matching sample (a
# plain tuple: one is made for most events of a majority rule)
_Match = tuple[int, Event]


def _keep_highest(servers: dict[str, _Match], event: Event, level: int) -> None:
    """Count the event in its server's match: the most severe level, the highest value."""
    current = servers.get(event.server)
    if current is None:
        servers[event.server] = (level, event)
    elif level > current[0] or event.value > current[1].value:
        highest = event if event.value > current[1].value else current[1]
        servers[event.server] = (max(level, current[0]), highest)


def _by_service(events: list[Event]) -> dict[str, list[Event]]:
    """The events of each service, in the order they are listed."""
    return {
        service: list(group) for service, group in groupby(sorted(events, key=_service), _service)
    }


def _highest_by_server(events: list[Event]) -> dict[str, Event]:
    """Each server's highest sample (of equally high ones, the first)."""
    servers: dict[str, Event] = {}
    for event in events:
        current = servers.get(event.server)
        if current is None or event.value > current.value:
            servers[event.server] = event
    return servers


def _others(reported: Iterable[str], alert: MajorityAlert) -> tuple[str, ...]:
    """The servers that reported and are not among the alert's matched ones, in order."""
    return tuple(sorted(set(reported).difference(alert.matched_servers)))


class _EarlyMinute:
    """What a majority rule has seen so far of the oldest minute not yet evaluated."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.latest: dict[str, dict[SampleKey, Event]] = {}  # by service
        self.told: set[str] = set()  # the services alerted early this minute

    def add(self, events: Iterable[Event]) -> set[str]:
        """Take the events in; the services they belong to."""
        touched: set[str] = set()
        for event in events:
            latest = self.latest.setdefault(event.service, {})
            key = (event.server, event.component)
            current = latest.get(key)
            if current is None or event.timestamp >= current.timestamp:
                latest[key] = event
            touched.add(event.service)
        return touched


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
        now = window.start + WINDOW_SECONDS
        looked_at: dict[AlertKey, Number] = {}  # with its silence at the end of the minute
        for event in window.latest_samples(spec.components):
            if _matches(spec, event, on_error):
                key = (event.service, event.server)
                last_seen[key] = max(last_seen.get(key, event.timestamp), event.timestamp)
                looked_at[AlertKey(spec.name, event.service, event.server)] = now - last_seen[key]
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

    def early(self, start: int, events: Sequence[Event]) -> list[Alert]:
        """Nothing: silence is known only at the end of a minute."""
        return []


def build_rule(spec: RuleSpec, fires_early: bool = False, alerts_only: bool = False) -> Rule:
    """The rule of a spec; `fires_early`: its `early` will be asked (a live stream);
    `alerts_only`: only its alerts will be, not what it looked at or which servers did not
    match (a batch run whose lifecycle tracks nothing)."""
    if spec.absent is not None:
        return AbsentRule(spec)
    if spec.majority:
        return MajorityRule(spec, fires_early, alerts_only)
    return ServerRule(spec, alerts_only)
