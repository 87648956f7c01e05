"""Event-time windows: minutes aligned to the epoch, closed as event time moves on.

A window collects the events of its minute as they come; what the rules ask of it (the latest
sample of each server and component, whether each server was active) is worked out once, when
it is evaluated. It closes once the newest event seen is `allowed_lateness` seconds past the
window's end (the watermark); an event for a window that has closed is late, and the caller
decides how to report it.

The watermark follows the fleet, not its most extreme event: an event more than `max_skew`
seconds ahead of the newest one is held back rather than taken, since one source whose clock
is wrong (or that sends milliseconds) would otherwise make every other source late. Held
events are taken once another server sends events within `max_skew` of them (the fleet has
moved on: a gap in the data, a restart after downtime); otherwise they are rejected as ahead
of the fleet once the minute they came in closes. A stream that has seen one server only
holds nothing back: there is no fleet to compare it with.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from functools import cached_property
from itertools import compress, count, islice, repeat
from operator import attrgetter, floordiv, ge, itemgetter, ne
from typing import Any, NamedTuple, Protocol

from sereno.events.schema import Event, Number
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW, Timestamps

WINDOW_SECONDS = 60
DEFAULT_ALLOWED_LATENESS = 30.0

SampleKey = tuple[str, str]
LateHandler = Callable[[int], None]

_timestamp = attrgetter("timestamp")
_server = attrgetter("server")
_server_component = attrgetter("server", "component")
_active = attrgetter("active")


def window_start(timestamp: float) -> int:
    """The start of the minute holding `timestamp`, aligned to the epoch."""
    return int(timestamp // WINDOW_SECONDS) * WINDOW_SECONDS


class Window:
    """One minute's events, in the order they arrived."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.events: list[Event] = []
        self.places: list[int] | None = None
        """For a part of a window (one job's services): each event's place in the whole."""
        self._latest: dict[frozenset[str] | None, list[Event]] = {}
        self._uniform = False  # each server's events all active, or all passive

    def add(self, event: Event) -> None:
        self.events.append(event)

    def latest_samples(self, components: frozenset[str] | None) -> list[Event]:
        """The latest sample of each (server, component), of `components` only unless None,
        in the order their (server, component) first arrived."""
        latest = self._latest.get(components)
        if latest is None:
            if components is None:
                latest = list(self.latest.values())
            elif len(components) == 1:  # most rules': a server's samples are of one component
                (component,) = components
                events = [event for event in self.events if event.component == component]
                by_server = {event.server: event for event in events}
                latest = list(_latest_by(events, by_server, _server).values())
            else:
                events = [event for event in self.events if event.component in components]
                latest = list(_latest_sample(events).values())
            self._latest[components] = latest
        return latest

    @cached_property
    def latest(self) -> dict[SampleKey, Event]:
        """The latest sample of each (server, component)."""
        return _latest_sample(self.events)

    @cached_property
    def activity(self) -> dict[tuple[str, str], bool]:
        """Whether each (service, server) was active, by its latest sample in the window.

        Of a server's latest samples (one per component), the newest counts; of two equally
        new, the one whose component first appeared later in the window.
        """
        # comprehensions, not zips of attrgetters: each event makes one tuple, not three
        states = {(event.service, event.server, event.active) for event in self.events}
        activity = {(service, server): active for service, server, active in states}
        self._uniform = len(activity) == len(states)
        if self._uniform:
            # no server is both active and passive in this minute: which of its events is
            # the latest does not matter, so there is nothing to sort
            return activity
        by_time = sorted(self.latest.values(), key=_timestamp)
        return {(event.service, event.server): event.active for event in by_time}

    def active_samples(self, components: frozenset[str] | None) -> list[Event]:
        """`latest_samples` of the servers active in the window, in the same order."""
        samples = self.latest_samples(components)
        activity = self.activity
        if self._uniform:  # each event says what its server is
            return list(compress(samples, map(_active, samples)))
        return [event for event in samples if activity[(event.service, event.server)]]

    @cached_property
    def active_servers(self) -> Counter[str]:
        """The number of active servers of each service with one."""
        activity = self.activity
        return Counter(compress(map(itemgetter(0), activity), activity.values()))


MAX_HELD = 10_000  # events held back as ahead of the fleet, beyond which the oldest is rejected


class Misfits(Protocol):
    """Told of the events of a batch that a stream cannot take, by their index in it."""

    def late(self, index: int) -> None:
        """`events[index]` belongs to a minute already evaluated."""

    def ahead(self, index: int, fleet_time: float) -> None:
        """`events[index]` is far ahead of the rest of the fleet (at `fleet_time`), and no
        other server followed it."""


class _LateOnly:
    """Misfits for callers that tell only late events: an event ahead of the fleet counts
    as late."""

    def __init__(self, on_late: LateHandler) -> None:
        self.late = on_late

    def ahead(self, index: int, fleet_time: float) -> None:
        self.late(index)


class _Held(NamedTuple):
    """An event held back as ahead of the fleet, with whom to tell if it is rejected."""

    event: Event
    misfits: Misfits
    position: int  # its index in the batch it came in
    minute: int  # the fleet's minute when it came: it is rejected once that minute closes


class _OneOf:
    """The misfits of one held event, fed again on its own as `events[0]`."""

    def __init__(self, held: _Held) -> None:
        self._held = held

    def late(self, index: int) -> None:
        self._held.misfits.late(self._held.position)

    def ahead(self, index: int, fleet_time: float) -> None:
        self._held.misfits.ahead(self._held.position, fleet_time)


class Watermark(NamedTuple):
    """How far a stream has come: every minute before `closed_before` is evaluated, and
    `newest` is the newest event time seen (or reached by the clock)."""

    closed_before: float = float("-inf")
    newest: float = float("-inf")


BEGINNING = Watermark()


class Windows:
    """The open windows of one stream of events, closed in order on the watermark."""

    def __init__(
        self,
        allowed_lateness: float = DEFAULT_ALLOWED_LATENESS,
        resume: Watermark = BEGINNING,
        max_skew: float = DEFAULT_MAX_CLOCK_SKEW,
    ) -> None:
        self._allowed_lateness = allowed_lateness
        self._max_skew = max_skew
        self._open: dict[int, Window] = {}
        self._closed_before, self._newest = resume
        self._close_at: float = float("inf")  # the newest timestamp that closes a window
        self._held: list[_Held] = []  # ahead of the fleet, in the order they came
        self._first_server: str | None = None
        self._one_server = True  # until a second server is seen: nothing is held back
        self._one_server_before = True  # as it was before the batch being taken

    @property
    def watermark(self) -> Watermark:
        return Watermark(self._closed_before, self._newest)

    def oldest(self) -> Window | None:
        """The oldest open window: the next to close."""
        return self._open[min(self._open)] if self._open else None

    def extend(
        self,
        events: Sequence[Event],
        on_late: LateHandler | Misfits,
        timestamps: Timestamps | None = None,
    ) -> Iterator[Window]:
        """Add events in order, yielding each window as soon as the watermark closes it.

        `on_late(index)` (or `misfits.late`) is told of each late event, `events[index]`;
        `misfits.ahead` of each one rejected as ahead of the fleet, maybe in a later call.
        `timestamps`: the events', if known already. The same as adding events one by one,
        only faster.
        """
        misfits = _LateOnly(on_late) if callable(on_late) else on_late
        self._one_server_before = self._one_server
        if self._one_server:
            self._count_servers(events)
        if self._one_server_before and not self._one_server:
            # the fleet's second server is in this batch: from which event on, `_fleet_by` tells
            yield from self._extend_each(events, misfits)
        else:
            yield from self._extend_runs(events, misfits, timestamps)

    def _count_servers(self, events: Sequence[Event]) -> None:
        servers = set(map(_server, events))
        if self._first_server is None and servers:
            self._first_server = events[0].server
        servers.discard(self._first_server)
        self._one_server = not servers

    def _fleet_by(self, events: Sequence[Event], index: int) -> bool:
        """Whether more than one server has been seen up to `events[index]`."""
        if not self._one_server_before:
            return True
        first = self._first_server
        return any(event.server != first for event in events[: index + 1])

    def _ahead_limit(self) -> float:
        """The newest timestamp taken at once: beyond it, an event may be ahead of the fleet."""
        return self._newest + self._max_skew

    def _extend_runs(
        self, events: Sequence[Event], misfits: Misfits, told: Timestamps | None
    ) -> Iterator[Window]:
        """`_extend_each`, a run of events of one minute at a time: the run is taken up to
        the event that closes a window (if one does), then the windows are closed.

        Whatever could be ahead of the fleet goes event by event from there: the rest of the
        batch is left to `_extend_each`.
        """
        if not events:
            return
        if told is None:
            told = Timestamps.of(list(map(_timestamp, events)))
        timestamps, position = told.each, 0
        for end, newest_of_run in _runs(told):
            known = newest_of_run
            while position < end:
                run = timestamps[position:end]
                if window_start(run[0]) < self._closed_before:  # its minute was evaluated
                    for index in range(position, end):
                        misfits.late(index)
                    position = end
                    break
                newest_in_run = max(run) if known is None else known
                known = None  # of the rest of the run, once a window closes within it
                fleet_known = not self._one_server and self._newest > float("-inf")
                if fleet_known and newest_in_run > self._ahead_limit():
                    yield from self._extend_each(events[position:], _Shifted(misfits, position))
                    return
                window = self._window_for(run[0])
                assert window is not None
                closing = self._closing_index(run, newest_in_run)
                if closing is not None:
                    run = run[: closing + 1]
                    newest_in_run = max(run)
                window.events.extend(events[position : position + len(run)])
                self._newest = max(self._newest, newest_in_run)
                position += len(run)
                if closing is not None:
                    yield from self.close_ready()

    def _closing_index(self, run: list[Number], newest_in_run: Number) -> int | None:
        """The index of the first event of `run` at or past a window's closing time (0 if
        event time has passed it already: the run opened a window of a minute long gone);
        None if none is."""
        close_at = self._close_at
        if self._newest >= close_at:
            return 0
        if newest_in_run < close_at:  # most runs: no need to look for it
            return None
        return _first(map(ge, run, repeat(close_at)))

    def _extend_each(self, events: Sequence[Event], misfits: Misfits) -> Iterator[Window]:
        # event by event, with the window of the previous event kept at hand: most events
        # belong to the same minute as the one before them
        low = high = 0.0
        append: Callable[[Event], None] = _nowhere
        newest, close_at, ahead = self._newest, self._close_at, self._ahead_limit()
        for index, event in enumerate(events):
            timestamp = event.timestamp
            if timestamp > ahead and newest > float("-inf") and self._fleet_by(events, index):
                yield from self._hold(_Held(event, misfits, index, window_start(newest)))
                low = high = 0.0  # holding may have moved the fleet on and closed windows
                newest, close_at, ahead = self._newest, self._close_at, self._ahead_limit()
                continue
            if not low <= timestamp < high:
                window = self._window_for(timestamp)
                if window is None:
                    misfits.late(index)
                    continue
                low, high = window.start, window.start + WINDOW_SECONDS
                append = window.events.append
                close_at = self._close_at
            append(event)
            if timestamp > newest:
                self._newest = newest = timestamp
                ahead = self._ahead_limit()
            if newest >= close_at:
                yield from self.close_ready()
                low = high = 0.0  # the window at hand may be among those closed
                close_at = self._close_at

    def _hold(self, held: _Held) -> Iterator[Window]:
        """Hold an event back as ahead of the fleet; if another server's held event is near
        it in time, the fleet has moved on: take them all."""
        server, timestamp = held.event.server, held.event.timestamp
        follower = next(
            (
                other.event.timestamp
                for other in self._held
                if other.event.server != server
                and abs(other.event.timestamp - timestamp) <= self._max_skew
            ),
            None,
        )
        self._held.append(held)
        if follower is not None:
            yield from self._move_on(min(timestamp, follower))
        elif len(self._held) > MAX_HELD:
            oldest = self._held.pop(0)
            oldest.misfits.ahead(oldest.position, self._newest)

    def _move_on(self, fleet_time: float) -> Iterator[Window]:
        """The fleet has jumped ahead to `fleet_time`: take what was held, in time order
        (what is still far ahead of it is held again)."""
        released = sorted(self._held, key=lambda item: item.event.timestamp)
        self._held = []
        self._one_server_before = False  # the follower is another server
        self._newest = max(self._newest, fleet_time)
        for item in released:
            yield from self._extend_each([item.event], _OneOf(item))

    def _reject(self, rejected: Callable[[_Held], bool]) -> None:
        """Reject the held events that are `rejected`, telling their misfits."""
        kept = []
        for item in self._held:
            if rejected(item):
                item.misfits.ahead(item.position, self._newest)
            else:
                kept.append(item)
        self._held = kept

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
            self._reject_held_of_closed_minutes()
            yield Window(latest)

    def close_all(self) -> Iterator[Window]:
        """Close and yield every open window, oldest first: the end of the input. What is
        still held back as ahead of the fleet is rejected."""
        yield from self._close_while(lambda start: True)
        self._reject(lambda item: True)

    def _close_while(self, closes: Callable[[int], bool]) -> Iterator[Window]:
        while self._open:
            oldest = min(self._open)
            if not closes(oldest):
                return
            self._closed_before = oldest + WINDOW_SECONDS
            window = self._open.pop(oldest)
            self._close_at = self._closing_time(min(self._open)) if self._open else float("inf")
            if self._held:
                self._reject_held_of_closed_minutes()
            yield window

    def _reject_held_of_closed_minutes(self) -> None:
        """No other server followed them while their minute was open: they are wrong."""
        self._reject(lambda item: item.minute < self._closed_before)


def _runs(told: Timestamps) -> list[tuple[int, Number | None]]:
    """Where each run of consecutive timestamps of one minute ends (the index after it),
    with its newest timestamp when that is known already."""
    timestamps = told.each
    if _minute(told.oldest) == _minute(told.newest):  # a batch within one minute: most
        return [(len(timestamps), told.newest)]
    runs = _sorted_runs(told)
    if runs is None:
        minutes = list(map(floordiv, timestamps, repeat(WINDOW_SECONDS)))
        ends = [*compress(count(1), map(ne, minutes, islice(minutes, 1, None))), len(minutes)]
        runs = [(end, None) for end in ends]
    return runs


def _sorted_runs(told: Timestamps) -> list[tuple[int, Number | None]] | None:
    """`_runs` when the minutes come in order (as they mostly do): found by bisection and
    checked run by run, without a division an event; None if they do not.

    A run is checked at its ends only where the batch's oldest and newest do not vouch for
    it: the first run starts in the oldest's minute, the last ends in the newest's."""
    timestamps = told.each
    runs: list[tuple[int, Number | None]] = []
    position, total = 0, len(timestamps)
    minute = _minute(timestamps[0])
    if minute != _minute(told.oldest):
        return None
    while True:
        end = bisect_left(timestamps, minute + 1, position, total, key=_minute)
        run = timestamps[position:end]
        if position > 0 and _minute(min(run)) != minute:
            return None
        if end == total:
            if _minute(told.newest) != minute:
                return None
            runs.append((end, told.newest))
            return runs
        newest = max(run)
        if _minute(newest) != minute:
            return None
        runs.append((end, newest))
        position, minute = end, _minute(timestamps[end])


def _minute(timestamp: Number) -> Number:
    return timestamp // WINDOW_SECONDS


def _latest_sample(events: list[Event]) -> dict[SampleKey, Event]:
    """The latest event of each (server, component), in the order they first came."""
    latest = {(event.server, event.component): event for event in events}
    return _latest_by(events, latest, _server_component)


def _latest_by(
    events: list[Event], last: dict[Any, Event], key: Callable[[Event], Hashable]
) -> dict[Any, Event]:
    """The latest of the events of each `key`, in the order the keys first came, from
    `last`: the last to come of each."""
    if len(last) < len(events):  # some key came twice: the later in time wins
        # stable: of two events with the same timestamp, the one that arrived last is later
        in_time_order = sorted(events, key=_timestamp)
        # placeholders in order of first arrival, each replaced by its latest event
        placeholders: dict[Any, Any] = dict.fromkeys(map(key, events))
        placeholders.update(zip(map(key, in_time_order), in_time_order, strict=True))
        return placeholders
    return last


class _Shifted:
    """The misfits of a batch, told of `events[offset:]` by their index in that slice."""

    def __init__(self, misfits: Misfits, offset: int) -> None:
        self._misfits, self._offset = misfits, offset

    def late(self, index: int) -> None:
        self._misfits.late(index + self._offset)

    def ahead(self, index: int, fleet_time: float) -> None:
        self._misfits.ahead(index + self._offset, fleet_time)


def _first(truths: Iterable[bool]) -> int | None:
    """The index of the first true value; None if none is."""
    return next(compress(count(), truths), None)


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
