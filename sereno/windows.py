"""Event-time windows: minutes aligned to the epoch, closed as event time moves on.

A window holds the latest sample of each server and component. It closes once the newest
event seen is `allowed_lateness` seconds past the window's end (the watermark); an event for a
window that has closed is late, and the caller decides how to report it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sereno.events import Event

WINDOW_SECONDS = 60
DEFAULT_ALLOWED_LATENESS = 30.0


def window_start(timestamp: float) -> int:
    """The start of the minute holding `timestamp`, aligned to the epoch."""
    return int(timestamp // WINDOW_SECONDS) * WINDOW_SECONDS


@dataclass
class Window:
    start: int
    latest: dict[tuple[str, str], Event] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        key = (event.server, event.component)
        current = self.latest.get(key)
        if current is None or event.timestamp >= current.timestamp:
            self.latest[key] = event

    def activity(self) -> dict[tuple[str, str], bool]:
        """Whether each (service, server) was active, by its latest event in the window."""
        newest: dict[tuple[str, str], Event] = {}
        for event in self.latest.values():
            key = (event.service, event.server)
            current = newest.get(key)
            if current is None or event.timestamp >= current.timestamp:
                newest[key] = event
        return {key: event.active for key, event in newest.items()}


class Windows:
    """The open windows of one stream of events, closed in order on the watermark."""

    def __init__(self, allowed_lateness: float = DEFAULT_ALLOWED_LATENESS) -> None:
        self._allowed_lateness = allowed_lateness
        self._open: dict[int, Window] = {}
        self._closed_before: float = float("-inf")
        self._newest: float = float("-inf")

    def add(self, event: Event) -> bool:
        """Put an event in its window; False if that window has already closed (a late event)."""
        start = window_start(event.timestamp)
        if start < self._closed_before:
            return False
        window = self._open.get(start)
        if window is None:
            window = self._open[start] = Window(start)
        window.add(event)
        self._newest = max(self._newest, event.timestamp)
        return True

    def close_ready(self) -> Iterator[Window]:
        """Close and yield, oldest first, every window the watermark has passed."""
        watermark = self._newest - self._allowed_lateness
        while self._open:
            oldest = min(self._open)
            if oldest + WINDOW_SECONDS > watermark:
                return
            yield self._close(oldest)

    def close_all(self) -> Iterator[Window]:
        """Close and yield every open window, oldest first: the end of the input."""
        while self._open:
            yield self._close(min(self._open))

    def _close(self, start: int) -> Window:
        self._closed_before = start + WINDOW_SECONDS
        return self._open.pop(start)
