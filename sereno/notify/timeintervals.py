"""Named time intervals, as Alertmanager's `time_intervals` writes them: when a receiver is
muted, or the only times it is told.

Pure. An interval holds at an instant when any of its specs does; a spec holds when every field
it gives matches the instant's wall-clock time in its location (an empty spec always holds).
Weeks run from sunday to saturday, as in Alertmanager, so `saturday:sunday` is no range.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from sereno.rules.yamlnodes import INT, STR, NodeReader

DAY = 86400
HORIZON = 5 * 366 * DAY  # how far ahead `next_occurrences` looks
UTC = ZoneInfo("UTC")
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = tuple(name.lower() for name in calendar.month_name[1:])
SPEC_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")
_Item = TypeVar("_Item")
_ItemReader = Callable[[yaml.Node, str, str], "_Item | None"]
_ValueReader = Callable[[str], int]  # one end of a range, raising ValueError saying why
_ORDERS = {"weekdays": " (weeks run from sunday to saturday)"}
_CLOCK = re.compile(r"^(?:([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00))$")


@dataclass(frozen=True)
class Span:
    """A range of whole numbers, both ends included (weekdays, days, months, years)."""

    first: int
    last: int

    def __contains__(self, number: int) -> bool:
        return self.first <= number <= self.last


@dataclass(frozen=True)
class Times:
    """Minutes of the day on the wall clock, `start` included, `end` (up to 1440) not."""

    start: int
    end: int


@dataclass(frozen=True)
class IntervalSpec:
    """One entry of an interval's list; a field left empty matches everything."""

    times: tuple[Times, ...] = ()
    weekdays: tuple[Span, ...] = ()  # 0 is sunday
    days_of_month: tuple[Span, ...] = ()  # negative: from the end of the month, -1 the last
    months: tuple[Span, ...] = ()
    years: tuple[Span, ...] = ()
    location: ZoneInfo = UTC


@dataclass(frozen=True)
class TimeInterval:
    name: str
    specs: tuple[IntervalSpec, ...]


# --- when an interval holds ----------------------------------------------------------------


def contains(interval: TimeInterval, instant: float) -> bool:
    """Whether `interval` holds at `instant` (Unix seconds)."""
    return any(_spec_contains(spec, instant) for spec in interval.specs)


def next_occurrences(
    interval: TimeInterval, after: float, count: int, horizon: float = HORIZON
) -> list[tuple[float, float]]:
    """The next `count` periods during which `interval` holds, as (start, end) Unix seconds,
    adjacent periods merged. A period under way at `after` starts at `after`; one still going
    `horizon` seconds after it ends there. Fewer if it does not hold that often before then."""
    periods: list[tuple[float, float]] = []
    until = after + horizon
    started = after if contains(interval, after) else None
    for instant in _changes(interval, after, until):
        holds = contains(interval, instant)
        if holds and started is None:
            started = instant
        elif not holds and started is not None:
            periods.append((started, instant))
            started = None
            if len(periods) == count:
                return periods
    if started is not None and len(periods) < count:
        periods.append((started, until))
    return periods


def location_at(interval: TimeInterval, instant: float) -> ZoneInfo:
    """The location of the first spec that holds at `instant` (UTC if none does)."""
    holding = (spec for spec in interval.specs if _spec_contains(spec, instant))
    return next((spec.location for spec in holding), UTC)


def _spec_contains(spec: IntervalSpec, instant: float) -> bool:
    local = datetime.fromtimestamp(instant, spec.location)
    if not _date_matches(spec, local.date()):
        return False
    minute = local.hour * 60 + local.minute
    return not spec.times or any(t.start <= minute < t.end for t in spec.times)


def _date_matches(spec: IntervalSpec, day: date) -> bool:
    weekday = (day.weekday() + 1) % 7  # Python counts from monday, Alertmanager from sunday
    if spec.weekdays and not any(weekday in span for span in spec.weekdays):
        return False
    if spec.days_of_month and not any(_day_in(span, day) for span in spec.days_of_month):
        return False
    if spec.months and not any(day.month in span for span in spec.months):
        return False
    return not spec.years or any(day.year in span for span in spec.years)


def _day_in(span: Span, day: date) -> bool:
    """As Alertmanager counts it: negative days from the month's end, a range that starts
    after the month's last day matches nothing, one that ends after it stops there."""
    length = calendar.monthrange(day.year, day.month)[1]
    first = length + span.first + 1 if span.first < 0 else span.first
    last = length + span.last + 1 if span.last < 0 else span.last
    return first <= length and first <= day.day <= min(last, length)


def _changes(interval: TimeInterval, after: float, until: float) -> Iterator[float]:
    """In order, every instant in (after, until] at which whether `interval` holds may change:
    the wall-clock boundaries of its specs on the days they match, both times a clock set back
    shows them, and the instants the clocks change."""
    window = after
    while window < until:
        end = min(window + DAY, until)
        candidates: set[float] = set()
        for spec in interval.specs:
            candidates.update(_spec_changes(spec, window, end))
        yield from sorted(c for c in candidates if window < c <= end)
        window = end


def _spec_changes(spec: IntervalSpec, start: float, end: float) -> Iterator[float]:
    zone = spec.location
    first = datetime.fromtimestamp(start, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, zone).date()
    day = first
    while day <= last:
        if _date_matches(spec, day):
            yield from _day_boundaries(spec, day)
        yield from _clock_change(zone, day)
        day += timedelta(days=1)


def _day_boundaries(spec: IntervalSpec, day: date) -> Iterator[float]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=spec.location)
    minutes = {0, 1440} | {t.start for t in spec.times} | {t.end for t in spec.times}
    for minute in minutes:
        # aware arithmetic is wall-clock arithmetic: this is the minute's reading of the clock
        wall = midnight + timedelta(minutes=minute)
        yield wall.replace(fold=0).timestamp()
        yield wall.replace(fold=1).timestamp()


def _clock_change(zone: ZoneInfo, day: date) -> Iterator[float]:
    """The instant the clocks of `zone` change on `day`, if they do: a wall-clock time the
    clock skips is first shown then."""
    low = datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
    high = low + DAY
    before, after = _offset(zone, low), _offset(zone, high)
    if before == after:
        return
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == before:
            low = middle
        else:
            high = middle
    yield high


def _offset(zone: ZoneInfo, instant: float) -> timedelta | None:
    return datetime.fromtimestamp(instant, zone).utcoffset()


def wall_clock(instant: float, zone: ZoneInfo) -> str:
    """`Mon 2026-11-30 09:00 +01:00`: an instant as the clocks of `zone` show it."""
    local = datetime.fromtimestamp(instant, timezone.utc).astimezone(zone)
    return local.strftime("%a %Y-%m-%d %H:%M ") + local.isoformat()[-6:]


# --- reading them from the config file -----------------------------------------------------


def _span(text: str, value: _ValueReader, order: str = "") -> Span:
    """`A` or `A:B`, each end read by `value`."""
    ends = text.split(":")
    if len(ends) > 2:
        raise ValueError(f"expected a value or a range FIRST:LAST, got {text!r}")
    first, last = value(ends[0].strip()), value(ends[-1].strip())
    if first > last and (first < 0) == (last < 0):
        raise ValueError(f"the range {text!r} ends before it starts{order}")
    if first < 0 < last:
        raise ValueError(f"the range {text!r} starts from the month's end and ends from its start")
    return Span(first, last)


def _named(text: str, names: tuple[str, ...], what: str, first: int) -> int:
    """The number of a weekday or month name (any case), counting from `first`."""
    lowered = text.lower()
    if lowered not in names:
        raise ValueError(f"unknown {what} {text!r} (known: {', '.join(names)})")
    return names.index(lowered) + first


def _weekday(text: str) -> int:
    return _named(text, WEEKDAYS, "weekday", 0)


def _month(text: str) -> int:
    if not text.isdigit():
        return _named(text, MONTHS, "month", 1)
    if not 1 <= int(text) <= 12:
        raise ValueError(f"month {text} is not one (1 to 12, or january to december)")
    return int(text)


def _day(text: str) -> int:
    day = int(text) if re.fullmatch(r"-?[0-9]+", text) else None
    if day is None or not (1 <= day <= 31 or -31 <= day <= -1):
        shown = str(day) if day is not None else repr(text)
        raise ValueError(
            f"day {shown} is not a day of the month (1 to 31, or -1 to -31 counted from its end)"
        )
    return day


def _year(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"expected a year such as 2026, got {text!r}")
    return int(text)


class TimeIntervalReader(NodeReader):
    """Reads a config's `time_intervals`: a list of `{name, time_intervals: [SPEC...]}`."""

    subject_kind = "time interval"

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.names: set[str] = set()  # of every interval, refused ones too

    def read(self, node: yaml.Node | None) -> dict[str, TimeInterval]:
        if node is None:
            return {}
        if not isinstance(node, yaml.SequenceNode):
            self._problem(node, "'time_intervals' must be a list of named time intervals")
            return {}
        intervals: dict[str, TimeInterval] = {}
        for position, entry in enumerate(node.value, start=1):
            interval = self._interval(entry, position)
            if interval is not None:  # a second of the same name is refused
                intervals[interval.name] = interval
        return intervals

    @property
    def found(self) -> list[tuple[int, int, str]]:
        """The problems with their line and column, to be merged with the config's."""
        return list(self._found)

    def _interval(self, node: yaml.Node, position: int) -> TimeInterval | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"time interval #{position} must be a mapping")
            return None
        entries = {str(key.value): value for key, value in node.value}
        name_node = entries.get("name")
        name = self._string(name_node, "name") if name_node is not None else None
        label = name or f"#{position}"
        if name in self.names:
            self._problem(node, "duplicate time interval name", name)
            name = None
        elif name is not None:
            self.names.add(name)
        fields = self._mapping(node, ("name", "time_intervals"), ("name", "time_intervals"), label)
        specs = self._specs(fields.get("time_intervals"), label)
        return TimeInterval(name, specs) if name is not None and specs is not None else None

    def _specs(self, node: yaml.Node | None, label: str) -> tuple[IntervalSpec, ...] | None:
        if node is None:
            return None
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self._problem(node, "key 'time_intervals': expected a non-empty list of specs", label)
            return None
        before = len(self._found)
        specs = tuple(self._spec(item, label) for item in node.value)
        return specs if len(self._found) == before else None

    def _spec(self, node: yaml.Node, label: str) -> IntervalSpec:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"a spec must be a mapping of {', '.join(SPEC_KEYS)}", label)
            return IntervalSpec()
        fields = self._mapping(node, SPEC_KEYS, subject=label)
        location = fields.get("location")
        return IntervalSpec(
            times=self._items(fields.get("times"), "times", label, self._times),
            weekdays=self._spans(fields.get("weekdays"), "weekdays", label, _weekday),
            days_of_month=self._spans(fields.get("days_of_month"), "days_of_month", label, _day),
            months=self._spans(fields.get("months"), "months", label, _month),
            years=self._spans(fields.get("years"), "years", label, _year),
            location=self._location(location, label) if location is not None else UTC,
        )

    def _items(
        self, node: yaml.Node | None, key: str, label: str, read: _ItemReader[_Item]
    ) -> tuple[_Item, ...]:
        if node is None:
            return ()
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self._problem(node, f"key {key!r}: expected a non-empty list", label)
            return ()
        items = (read(item, key, label) for item in node.value)
        return tuple(item for item in items if item is not None)

    def _times(self, node: yaml.Node, key: str, label: str) -> Times | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"key {key!r}: expected {{start_time, end_time}}", label)
            return None
        keys = ("start_time", "end_time")
        fields = self._mapping(node, keys, keys, label, what=" in 'times'")
        start, end = (self._clock(fields.get(name), name, label) for name in keys)
        if start is None or end is None:
            return None
        if start >= end:
            self._problem(node, "key 'times': end_time must come after start_time", label)
            return None
        return Times(start, end)

    def _clock(self, node: yaml.Node | None, key: str, label: str) -> int | None:
        text = self._text(node, key, label) if node is not None else None
        found = _CLOCK.match(text) if text is not None else None
        if found is None:
            if text is not None:
                self._problem(
                    node, f"key {key!r}: expected a time HH:MM, 00:00 to 24:00, got {text!r}", label
                )
            return None
        hours, minutes = (int(part) for part in found.groups() if part is not None)
        return hours * 60 + minutes

    def _spans(
        self, node: yaml.Node | None, key: str, label: str, value: _ValueReader
    ) -> tuple[Span, ...]:
        def span(item: yaml.Node, key: str, label: str) -> Span | None:
            text = self._text(item, key, label)
            if text is None:
                return None
            try:
                return _span(text, value, _ORDERS.get(key, ""))
            except ValueError as error:
                self._problem(item, f"key {key!r}: {error}", label)
                return None

        return self._items(node, key, label, span)

    def _text(self, node: yaml.Node, key: str, label: str) -> str | None:
        """A scalar's text as written: YAML 1.1 reads `17:00` and `1:5` as numbers (base 60)."""
        return self._typed(node, (STR, INT), "a string", key, label, lambda n: str(n.value))

    def _location(self, node: yaml.Node, label: str) -> ZoneInfo:
        name = self._string(node, "location", label)
        if name is None:
            return UTC
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self._problem(
                node,
                f"key 'location': unknown time zone {name!r} (expected an IANA name such as "
                "Europe/Madrid, or UTC)",
                label,
            )
            return UTC
