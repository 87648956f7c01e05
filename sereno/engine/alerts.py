"""Alerts: what the engine raises, as typed records the sinks write."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from sereno.events.schema import EVENT_FIELDS, Event, Number


class ServerAlert(msgspec.Struct, frozen=True, tag="server", tag_field="kind", omit_defaults=True):
    """A per-server rule matched one event (the latest of its server and component).

    `labels` holds the event's extra fields that the rules read (`datacenter`, `team`...),
    as text, when it has any: silences, maintenance windows and grouping may match on them.
    """

    rule: str
    severity: str
    timestamp: Number
    component: str
    value: Number
    server: str
    service: str
    labels: dict[str, str] | None = None


class MajorityAlert(msgspec.Struct, frozen=True, tag="majority", tag_field="kind"):
    """Most of a service's active servers matched a majority rule in one window.

    `timestamp` is the window's start and `value` the highest value among the matched servers
    (`component` is that event's component).
    """

    rule: str
    severity: str
    timestamp: int
    component: str
    value: Number
    service: str
    threshold: str
    matched_servers: list[str]
    matched: int
    active: int


class AbsentAlert(msgspec.Struct, frozen=True, tag="absent", tag_field="kind"):
    """A server sent no event that an `absent` rule counts for at least the rule's duration.

    `timestamp` is the start of the minute in which it was found silent, `last_seen` the time
    of its last counted event and `value` the seconds from then to the end of that minute.
    """

    rule: str
    severity: str
    timestamp: int
    server: str
    service: str
    last_seen: Number
    value: Number


Alert = ServerAlert | MajorityAlert | AbsentAlert


class AlertKey(NamedTuple):
    """What makes an alert the same alert from one minute to the next: never its values."""

    rule: str
    service: str
    server: str  # "" for a majority rule, which is about the whole service


def alert_key(alert: Alert) -> AlertKey:
    return AlertKey(alert.rule, alert.service, getattr(alert, "server", ""))


def extra_labels(event: Event) -> dict[str, str] | None:
    """The event's extra fields with a plain value (text, number, true or false), as text."""
    if type(event) is Event:
        return None
    found = {
        name: _label_text(value)
        for name in event.__struct_fields__[len(EVENT_FIELDS) :]
        if isinstance(value := getattr(event, name), str | int | float)
    }
    return found or None


def _label_text(value: str | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)
