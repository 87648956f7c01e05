"""Event-time windows: minutes aligned to the epoch, closed as event time moves on.

A window collects the events of its minute as they come; what the rules ask of it (the latest
sample of each server and component, whether each server was active) is worked out once, when
it is evaluated. It closes once the newest event seen is `allowed_lateness` seconds past the
window's end (the watermark); an event for a window that has closed is late, and the caller
decides how to report it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from operator import attrgetter
from typing import NamedTuple, cast

from sereno.events import Event

WINDOW_SECONDS = 60
DEFAULT_ALLOWED_LATENESS = 30.0

SampleKey = tuple[str, str]
LateHandler = Callable[[int], None]

_timestamp = attrgetter("timestamp")
_server_component = attrgetter("server", "component")
_service_server = attrgetter("service", "server")
_active = attrgetter("active")


def window_start(timestamp: float) -> int:
    """The start of the minute holding `timestamp`, aligned to the epoch."""
    return int(timestamp // WINDOW_SECONDS) * WINDOW_SECONDS


class Window:
    """One minute's events, in the order they arrived."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.events: list[Event] = []
        self._latest: dict[frozenset[str] | None, dict[SampleKey, Event]] = {}

    def add(self, event: Event) -> None:
        self.events.append(event)

    def latest_samples(self, components: frozenset[str] | None) -> dict[SampleKey, Event]:
        """The latest sample of each (server, component), of `components` only unless None.

        Samples are listed in the order their (server, component) first arrived.
        """
        latest = self._latest.get(components)
        if latest is None:
            events = self.events
            if components is not None:
                events = [event for event in events if event.component in components]
            # stable: of two samples with the same timestamp, the one that arrived last is later
            in_time_order = sorted(events, key=_timestamp)
            # placeholders in order of first arrival, each replaced by its latest sample
            latest = cast("dict[SampleKey, Event]", dict.fromkeys(map(_server_component, events)))
            latest.update(zip(map(_server_component, in_time_order), in_time_order, strict=True))
            self._latest[components] = latest
        return latest

    @property
    def latest(self) -> dict[SampleKey, Event]:
        """The latest sample of each (server, component)."""
        return self.latest_samples(None)

    @cached_property
    def activity(self) -> dict[tuple[str, str], bool]:
        """Whether each (service, server) was active, by its latest sample in the window.

        Of a server's latest samples (one per component), the newest counts; of two equally
        new, the one whose component first appeared later in the window.
        """
        states = set(zip(map(_service_server, self.events), map(_active, self.events), strict=True))
        activity = dict(states)
        if len(activity) == len(states):
            # no server is both active and passive in this minute: which of its events is
            # the latest does not matter, so there is nothing to sort
            return activity
        by_time = sorted(self.latest.values(), key=_timestamp)
        return dict(zip(map(_service_server, by_time), map(_active, by_time), strict=True))


class Watermark(NamedTuple):
    """How far a stream has come: every minute before `closed_before` is evaluated, and
    `newest` is the newest event time seen (or reached by the clock)."""

    closed_before: float = float("-inf")
    newest: float = float("-inf")


BEGINNING = Watermark()


class Windows:
    """The open windows of one stream of events, closed in order on the watermark."""

    def __init__(
        self, allowed_lateness: float = DEFAULT_ALLOWED_LATENESS, resume: Watermark = BEGINNING
    ) -> None:
        self._allowed_lateness = allowed_lateness
        self._open: dict[int, Window] = {}
        self._closed_before, self._newest = resume
        self._close_at: float = float("inf")  # the newest timestamp that closes a window

    @property
    def watermark(self) -> Watermark:
        return Watermark(self._closed_before, self._newest)

    def oldest(self) -> Window | None:
        """The oldest open window: the next to close."""
        return self._open[min(self._open)] if self._open else None

    def add(self, event: Event) -> bool:
        """Put an event in its window; False if that window has already closed (a late event)."""
        window = self._window_for(event.timestamp)
        if window is None:
            return False
        window.add(event)
        self._newest = max(self._newest, event.timestamp)
        return True

    def extend(self, events: Sequence[Event], on_late: LateHandler) -> Iterator[Window]:
        """Add events in order, yielding each window as soon as the watermark closes it.

        `on_late(index)` is told of each late event, `events[index]`. The same as `add` and
        `close_ready` event by event, only faster.
        """
        if not self._extend_one_minute(events):
            yield from self._extend_each(events, on_late)

    def _extend_one_minute(self, events: Sequence[Event]) -> bool:
        """Add `events` at once if they all belong to one open minute and close no window.

        Most batches do: only those across the turn of a minute need `_extend_each`.
        """
        timestamps = list(map(_timestamp, events))
        if not timestamps:
            return True
        first, last = min(timestamps), max(timestamps)
        start = window_start(first)
        newest = max(self._newest, last)
        if start != window_start(last) or newest >= min(self._close_at, self._closing_time(start)):
            return False
        window = self._window_for(first)
        if window is None:  # a whole batch of late events
            return False
        window.events.extend(events)
        self._newest = newest
        return True

    def _extend_each(self, events: Sequence[Event], on_late: LateHandler) -> Iterator[Window]:
        # event by event, with the window of the previous event kept at hand: most events
        # belong to the same minute as the one before them
        low = high = 0.0
        append: Callable[[Event], None] = _nowhere
        newest, close_at = self._newest, self._close_at
        for index, event in enumerate(events):
            timestamp = event.timestamp
            if not low <= timestamp < high:
                window = self._window_for(timestamp)
                if window is None:
                    on_late(index)
                    continue
                low, high = window.start, window.start + WINDOW_SECONDS
                append = window.events.append
                close_at = self._close_at
            append(event)
            if timestamp > newest:
                self._newest = newest = timestamp
            if newest >= close_at:
                yield from self.close_ready()
                low = high = 0.0  # the window at hand may be among those closed
                close_at = self._close_at

    def _window_for(self, timestamp: float) -> Window | None:
        start = window_start(timestamp)
        if start < self._closed_before:
            return None
        window = self._open.get(start)
        if window is None:
            window = self._open[start] = Window(start)
            self._close_at = min(self._close_at, self._closing_time(start))
        return window

    def _closing_time(self, start: int) -> float:
        return start + WINDOW_SECONDS + self._allowed_lateness

    def close_ready(self) -> Iterator[Window]:
        """Close and yield, oldest first, every window the watermark has passed."""
        return self._close_while(lambda start: self._closing_time(start) <= self._newest)

    def advance(self, now: float) -> Iterator[Window]:
        """Move event time on to `now` without an event (a clock tick while no event comes).

        Closes the windows `now` passes, like an event would; and if the latest minute it
        passes had no event at all, yields that minute as an empty window too, so that
        silence is noticed even when nothing reports. Earlier empty minutes are skipped, as
        a gap in a file is.
        """
        if now <= self._newest:
            return
        self._newest = now
        yield from self.close_ready()
        latest = window_start(now - self._allowed_lateness) - WINDOW_SECONDS
        if latest >= self._closed_before:  # close_ready has closed any window up to it
            self._closed_before = latest + WINDOW_SECONDS
            yield Window(latest)

    def close_all(self) -> Iterator[Window]:
        """Close and yield every open window, oldest first: the end of the input."""
        return self._close_while(lambda start: True)

    def _close_while(self, closes: Callable[[int], bool]) -> Iterator[Window]:
        while self._open:
            oldest = min(self._open)
            if not closes(oldest):
                return
            self._closed_before = oldest + WINDOW_SECONDS
            window = self._open.pop(oldest)
            self._close_at = self._closing_time(min(self._open)) if self._open else float("inf")
            yield window


def _nowhere(event: Event) -> None:
    raise AssertionError("an event was put in no window")


def in_batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    """Consecutive lists of up to `size` events."""
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
