"""What receivers are told: a `Notice` per alert change (or per group of alerts), as the
planner (`notify.planner`) makes it. A notice carries everything any receiver needs, rendered
when it is queued, so the outbox alone can deliver it after a restart.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import msgspec

from sereno.events.schema import Number
from sereno.notify.config import NotifyConfig
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
    extra_labels: dict[str, str] = msgspec.field(default_factory=dict)  # the event's own
    # a group's message (a receiver with group_by): its id, its labels and its alerts' notices
    group: str = ""
    group_labels: dict[str, str] = msgspec.field(default_factory=dict)
    alerts: tuple[Notice, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        """Alertmanager's labels: what makes this alert this alert, and the event's extra
        fields the rules read (which never stand for one of these)."""
        return alert_labels(
            self.rule, self.severity, self.service, self.server, self.component, self.extra_labels
        )

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
        otherwise take for the same one). A group's message is about its group."""
        if self.group:
            return f"group\0{self.group}"
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
        if self.alerts:  # as Alertmanager titles a group: [FIRING:3] and the group's labels
            firing = sum(alert.status == FIRING for alert in self.alerts)
            about = " ".join(f"{k}={v}" for k, v in sorted(self.group_labels.items()) if v)
            return f"[{self.status.upper()}:{firing or len(self.alerts)}] {about}".rstrip()
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


def alert_labels(
    rule: str, severity: str, service: str, server: str, component: str, extra: dict[str, str]
) -> dict[str, str]:
    """An alert's labels, as notices carry them and silences and windows match them."""
    labels = {**extra, "alertname": rule, "severity": severity, "service": service}
    if server:
        labels["server"] = server
    if component:
        labels["component"] = component
    return labels


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


def drill_notice(
    config: NotifyConfig, ruleset: RuleSet, now: float, sent_from: str = "`sereno notify-test`"
) -> Notice:
    """A test notification, sent from `sent_from`: clearly a drill, of the rules' highest
    severity."""
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
        summary=f"TEST: this is a test notification from {sent_from}; "
        "no alert is firing, nothing needs doing.",
        description="A fire drill of the notification path.",
        started=int(now),
        at=int(now),
        color=severity.color,
        external_url=config.external_url,
    )
