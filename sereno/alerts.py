"""Alerts: what the engine raises, as typed records the sinks write."""

from __future__ import annotations

import msgspec

from sereno.events import Number


class ServerAlert(msgspec.Struct, frozen=True, tag="server", tag_field="kind"):
    """A per-server rule matched one event (the latest of its server and component)."""

    rule: str
    severity: str
    timestamp: Number
    component: str
    value: Number
    server: str
    service: str


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


Alert = ServerAlert | MajorityAlert
