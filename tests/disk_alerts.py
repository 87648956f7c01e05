"""Episodes of the packaged disk rule, built by hand for the notification and delivery tests:
an alert that fired at T0, still firing or resolved in a given minute."""

from __future__ import annotations

from sereno.engine.alerts import AlertKey, ServerAlert
from sereno.engine.lifecycle import Episode, State

T0 = 1476057600
M = 60
DISK = "Disk consumption exceeds 90%"


def change(server: str, minute: int, resolved: bool = False, service: str = "web") -> Episode:
    """A disk alert of `server` that fired at T0 (and resolved in `minute`, if so)."""
    alert = ServerAlert(DISK, "MEDIUM", T0, "DiskUsedPercentage", 0.95, server, service)
    at = T0 + minute * M
    return Episode(
        AlertKey(DISK, service, server),
        "MEDIUM",
        State.RESOLVED if resolved else State.FIRING,
        T0,
        T0,
        0.95,
        1,
        alert,
        fired=T0,
        ended=at if resolved else None,
        recovered=0.5 if resolved else None,
        notified_at=T0,
        changed_at=at,
        tell="resolved" if resolved else "fired",
    )
