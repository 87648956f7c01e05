"""What receivers are told: a `Notice` per alert change, planned from the lifecycle's changes.

Pure: the planner is handed the episodes that changed (and, each minute, those firing) and
returns, per receiver that wants it, the notice to queue. A notice carries everything any
receiver needs, rendered when it is queued, so the outbox alone can deliver it after a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.events.schema import Number
from sereno.notify.acks import Acks
from sereno.notify.config import NotifyConfig, ReceiverSpec
from sereno.notify.maintenance import in_maintenance
from sereno.notify.matchers import matches
from sereno.notify.silencing import Silences
from sereno.notify.summary import summarize
from sereno.notify.timeintervals import contains
from sereno.rules.rulefmt import RuleSet, format_duration
from sereno.text import format_number, iso_time

FIRING, RESOLVED = "firing", "resolved"


class Notice(msgspec.Struct, frozen=True):
    """One alert change to tell. `reason` is why: fired, repeat, escalated, de-escalated,
    no data, data back, flapping, stopped flapping, resolved, dropped or test; `at` the
    minute (event time) it is about, part of its idempotency key. `state` is the alert's
    state then (firing, no data, resolved...)."""

    status: str  # firing or resolved, as Alertmanager says it
    reason: str
    rule: str
    severity: str
    service: str
    server: str  # "" for a majority rule, which is about the whole service
    component: str  # "" for a silence rule
    value: Number
    summary: str
    description: str
    started: int
    at: int
    ended: int | None = None
    recovered: Number | None = None
    threshold: str | None = None
    color: str | None = None  # the severity's, from the rules file
    external_url: str = ""
    state: str = ""
    previous_severity: str | None = None  # the one it moved from (escalated, de-escalated)
    no_data_since: int | None = None
    ended_by: str | None = None
    flapping: bool = False
    matched_servers: tuple[str, ...] = ()  # of a majority alert
    unmatched_servers: tuple[str, ...] = ()  # of a majority alert: reported, did not match
    alert_id: str = ""  # the episode's short id, as the API and `sereno ack` name it
    acked_by: str | None = None  # who has it

    @property
    def labels(self) -> dict[str, str]:
        """Alertmanager's labels: what makes this alert this alert."""
        labels = {"alertname": self.rule, "severity": self.severity, "service": self.service}
        if self.server:
            labels["server"] = self.server
        if self.component:
            labels["component"] = self.component
        return labels

    @property
    def annotations(self) -> dict[str, str]:
        annotations = {
            "summary": self.summary,
            "value": format_number(self.value),
            "change": self.reason,
        }
        if self.description:
            annotations["description"] = self.description
        if self.threshold is not None:
            annotations["threshold"] = self.threshold
        if self.ended is not None:
            annotations["resolution"] = self.resolution
        if self.state:
            annotations["state"] = self.state + (", flapping" if self.flapping else "")
        if self.no_data_since is not None:
            annotations["no_data_since"] = iso_time(self.no_data_since)
        if self.previous_severity is not None:
            annotations["previous_severity"] = self.previous_severity
        if self.matched_servers:
            annotations["matched_servers"] = ", ".join(self.matched_servers)
        if self.unmatched_servers:
            annotations["unmatched_servers"] = ", ".join(self.unmatched_servers)
        if self.alert_id:
            annotations["alert_id"] = self.alert_id
        if self.acked_by is not None:
            annotations["acked_by"] = self.acked_by
        return annotations

    @property
    def alert(self) -> str:
        """The alert this notice is about, whichever of its episodes: its labels. A receiver
        is told of one alert's changes in the order they happened (an episode's resolved
        after its firing, and before the next episode's firing, which Alertmanager would
        otherwise take for the same one)."""
        return "\0".join(f"{name}={value}" for name, value in sorted(self.labels.items()))

    @property
    def fingerprint(self) -> str:
        """The episode's identity, stable across its notices (as Alertmanager's, 16 hex)."""
        return hashlib.sha256(f"{self.alert}\0{self.started}".encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        """The idempotency key: the same for every attempt to deliver this notice."""
        return f"{self.fingerprint}-{self.reason}-{self.at}"

    @property
    def title(self) -> str:
        label = _TITLES.get(self.reason, self.status.upper())
        return f"[{label}] {self.severity}: {self.rule}"

    @property
    def resolution(self) -> str:
        """How it ended: the value it recovered to and how long it lasted."""
        lasted = format_duration(max(0, (self.ended or self.at) - self.started))
        if self.reason == "dropped":
            return f"no longer watched (its rule was removed) after {lasted}"
        if self.ended_by == "no data":
            return f"no data since {_clock(self.no_data_since)}, resolved after {lasted}"
        if self.recovered is None:
            return f"resolved after {lasted}"
        if not self.component:
            return f"reporting again, resolved after {lasted}"
        return f"recovered to {format_number(self.recovered)}, resolved after {lasted}"

    @property
    def text(self) -> str:
        """The notice in one line, as people read it."""
        if self.reason == "flapping":
            return f"{self.summary} - flapping ({self.state} now): not told change by change"
        if self.reason == "stopped flapping":
            return f"{self.summary} - stopped flapping, {self.state} now"
        if self.status == RESOLVED:
            return f"{self.summary} - {self.resolution}"
        if self.reason in ("escalated", "de-escalated"):
            return f"{self.summary} - {self.reason} from {self.previous_severity}"
        if self.no_data_since is not None:
            return f"{self.summary} - no data since {_clock(self.no_data_since)}"
        return self.summary


_TITLES = {
    "escalated": "ESCALATED",
    "de-escalated": "DE-ESCALATED",
    "no data": "NO DATA",
    "flapping": "FLAPPING",
    "stopped flapping": "STABLE",
}


def _clock(timestamp: float | None) -> str:
    if timestamp is None:
        return "?"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class Planner:
    """Which receivers hear of which alert changes, and what they are told. An alert that an
    active silence selects is told to nobody; when a silence ends, the alerts it covered that
    still fire are told then (`unsilenced`)."""

    def __init__(
        self,
        config: NotifyConfig,
        ruleset: RuleSet,
        silences: Silences | None = None,
        acks: Acks | None = None,
    ) -> None:
        self.config = config
        self.silences = silences
        self.acks = acks
        # Alertmanager repeats for itself: it is refreshed with what fires instead
        self._reminded = [spec for spec in config.receivers if spec.type != "alertmanager"]
        self.use(ruleset)

    @property
    def reminds(self) -> bool:
        """Whether any receiver is told again of alerts still firing."""
        return bool(self._reminded)

    def use(self, ruleset: RuleSet) -> None:
        """Plan with `ruleset` from now on (after a reload)."""
        self._specs = {spec.name: spec for spec in ruleset.rules}
        self._rank = {severity.name: rank for rank, severity in enumerate(ruleset.severities)}
        self._colors = {severity.name: severity.color for severity in ruleset.severities}

    def for_changes(self, changes: Iterable[Episode]) -> list[tuple[str, Notice]]:
        """The notices the alerts' changes call for (each change says which, if any)."""
        planned = []
        for episode in changes:
            if episode.tell is None:
                continue  # pending, muted, or never told to have fired
            at = episode.changed_at if episode.changed_at is not None else episode.started
            planned += self._to_receivers(self.notice(episode, episode.tell, at))
        return planned

    def unsilenced(self, firing: Iterable[Episode], start: int) -> list[tuple[str, Notice]]:
        """The alerts still firing (and told of) that silences covered until they ended,
        since the last call: told again now, in the minute at `start`, unless another
        silence still covers them."""
        ended = self.silences.ended() if self.silences is not None else []
        if not ended:
            return []
        planned = []
        for episode in firing:
            if episode.notified_at is None or episode.muted or not episode.is_open:
                continue
            notice = self.notice(episode, "unsilenced", start)
            if any(matches(silence.matchers, notice.labels) for silence in ended):
                planned += self._to_receivers(notice)
        return planned

    def silenced_by(self, episode: Episode) -> list[str]:
        """The ids of the active silences that select this alert."""
        if self.silences is None or not self.silences.any_active():
            return []
        return self.silences.silencing(self.notice(episode, "fired", episode.started).labels)

    def maintenance_of(self, episode: Episode, now: float) -> str | None:
        """The maintenance window that keeps this alert from people at `now`, if any."""
        labels = self.notice(episode, "fired", episode.started).labels
        window = in_maintenance(self.config.maintenance_windows, labels, now)
        return window.name if window is not None else None

    def _to_receivers(self, notice: Notice) -> list[tuple[str, Notice]]:
        """The notice for each receiver that wants it; for none while it is silenced."""
        if self._silenced(notice):
            return []
        return [(spec.name, notice) for spec in self.config.receivers if self._wants(spec, notice)]

    def repeats(
        self, firing: Iterable[Episode], start: int, previous: int
    ) -> list[tuple[str, Notice]]:
        """The reminders due in the minute at `start` (the one evaluated before it was at
        `previous`): one every `repeat_interval` after people were told an alert fires (or
        fires at a higher level), while it fires, and is not muted."""
        planned = []
        for episode in firing:
            told = episode.notified_at
            if told is None or not episode.is_open or episode.muted or start <= told:
                continue
            if self._acknowledged(episode):
                continue  # someone has it
            before = max(previous, told) - told  # how long it had been told a minute ago
            due = [
                spec
                for spec in self._reminded
                if (start - told) // spec.timing.repeat_interval
                > before // spec.timing.repeat_interval
            ]
            notice = self.notice(episode, "repeat", start) if due else None
            if notice is not None and not self._silenced(notice):
                planned += [(spec.name, notice) for spec in due if self._wants(spec, notice)]
        return planned

    def _acknowledged(self, episode: Episode) -> bool:
        """Whether someone has the alert at its severity (or a higher one than it has now)."""
        ack = self.acks.get(episode.id) if self.acks is not None else None
        if ack is None:
            return False
        rank = self._rank.get(episode.severity, len(self._rank))
        return rank <= self._rank.get(ack.severity, len(self._rank))

    def _silenced(self, notice: Notice) -> bool:
        """Kept from every receiver: by an active silence, or by a maintenance window in force
        at the notice's minute (dropped, as in quiet hours: not told when the window ends)."""
        windows = self.config.maintenance_windows
        if in_maintenance(windows, notice.labels, notice.at) is not None:
            return True
        return self.silences is not None and bool(self.silences.silencing(notice.labels))

    def firing_for(
        self, spec: ReceiverSpec, episodes: Sequence[Episode], now: float
    ) -> list[Notice]:
        """The notices of the alerts firing now that `spec` wants (Alertmanager's refresh),
        but those silenced, or in a maintenance window or the receiver's quiet hours `now`
        (seconds since the epoch)."""
        notices = (
            self.notice(e, "fired", e.fired)
            for e in episodes
            if e.fired is not None and e.notified_at is not None and not e.muted
        )
        return [notice for notice in notices if self._would_tell(spec, notice, now)]

    def _would_tell(self, spec: ReceiverSpec, notice: Notice, now: float) -> bool:
        """Whether `spec` would be told the notice if it were about the minute `now`."""
        as_of_now = msgspec.structs.replace(notice, at=int(now))
        return not self._silenced(as_of_now) and self._wants(spec, as_of_now)

    def notice(self, episode: Episode, reason: str, at: int) -> Notice:
        alert, key = episode.last, episode.key
        spec = self._specs.get(key.rule)
        threshold = spec.threshold if spec is not None else None
        template = spec.summary if spec is not None else None
        matched = getattr(alert, "matched_servers", ())
        ack = self.acks.get(episode.id) if self.acks is not None else None
        return Notice(
            status=RESOLVED if not episode.is_open else FIRING,
            reason=reason,
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server,
            component=getattr(alert, "component", ""),
            value=alert.value,
            summary=summarize(alert, template, threshold),
            description=spec.description if spec is not None else "",
            started=episode.started,
            at=at,
            ended=episode.ended,
            recovered=episode.recovered,
            threshold=threshold,
            color=self._colors.get(episode.severity),
            external_url=self.config.external_url,
            state=episode.state.value,
            previous_severity=episode.previous_severity,
            no_data_since=episode.no_data_since,
            ended_by=episode.ended_by,
            flapping=episode.flapping,
            matched_servers=tuple(matched),
            unmatched_servers=episode.unmatched,
            alert_id=episode.id,
            acked_by=ack.by if ack is not None else None,
        )

    def _wants(self, spec: ReceiverSpec, notice: Notice) -> bool:
        if spec.rules is not None and notice.rule not in spec.rules:
            return False
        if spec.services is not None and notice.service not in spec.services:
            return False
        if not _on_duty(spec, notice.at):
            return False  # dropped, not held back: a muted notice is never queued later
        if spec.min_severity is None:
            return True
        # a severity no longer in the rules is told rather than kept quiet
        rank = self._rank.get(notice.severity, len(self._rank))
        return rank >= self._rank.get(spec.min_severity, 0)


def _on_duty(spec: ReceiverSpec, at: int) -> bool:
    """Whether `spec` is told at `at`: in none of its mute intervals and, if it has active
    intervals, in one of them."""
    if any(contains(interval, at) for interval in spec.mute_time_intervals):
        return False
    active = spec.active_time_intervals
    return not active or any(contains(interval, at) for interval in active)


def drill_notice(config: NotifyConfig, ruleset: RuleSet, now: float) -> Notice:
    """`sereno notify-test`'s notice: clearly a drill, of the rules' highest severity."""
    severity = ruleset.severities[-1]
    return Notice(
        status=FIRING,
        reason="test",
        rule="Sereno test notification",
        severity=severity.name,
        service="sereno",
        server="",
        component="",
        value=0,
        summary="TEST: this is a test notification from `sereno notify-test`; "
        "no alert is firing, nothing needs doing.",
        description="A fire drill of the notification path.",
        started=int(now),
        at=int(now),
        color=severity.color,
        external_url=config.external_url,
    )
