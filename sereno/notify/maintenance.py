"""Maintenance windows: recurring quiet periods, written in the config file, during which the
alerts a set of matchers selects are told to no receiver ("InboxService deploys every tuesday
from 02:00 to 03:00").

Pure. A window covers the alerts whose labels all its matchers select, as a silence does, while
one of its time intervals holds. Unlike a silence, it is not made at run time for one
occasion but comes back on its schedule; unlike a receiver's quiet hours, it is about alerts,
not receivers, and keeps them from every receiver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sereno.notify.matchers import Matcher, matches
from sereno.notify.timeintervals import TimeInterval, contains


@dataclass(frozen=True)
class MaintenanceWindow:
    name: str
    matchers: tuple[Matcher, ...]
    intervals: tuple[TimeInterval, ...]
    comment: str = ""

    @property
    def schedule(self) -> TimeInterval:
        """When the window is in force, as one interval: it holds when any of the window's
        intervals does, so its periods are theirs, those that follow one another merged."""
        specs = tuple(spec for interval in self.intervals for spec in interval.specs)
        return TimeInterval(self.name, specs)


def in_maintenance(
    windows: Iterable[MaintenanceWindow], labels: Mapping[str, str], at: float
) -> MaintenanceWindow | None:
    """The first window whose matchers select `labels` and that is in force at `at` (Unix
    seconds), or None if no window covers them then."""
    return next(
        (
            window
            for window in windows
            if matches(window.matchers, labels)
            and any(contains(interval, at) for interval in window.intervals)
        ),
        None,
    )
