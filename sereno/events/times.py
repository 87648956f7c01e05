"""Event time checked: timestamps that are no time, or far ahead of the clock, and how to say so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from sereno.events.schema import Number

DEFAULT_MAX_CLOCK_SKEW = 300.0
PLAUSIBLE_SECONDS = 1e8  # 1973: a timestamp in a smaller unit divided down to seconds is past it
_SMALLER_UNITS = ((1e3, "milliseconds"), (1e6, "microseconds"), (1e9, "nanoseconds"))
_YEAR = 365.25 * 86400


class Timestamps(NamedTuple):
    """A batch's timestamps, in order, with the oldest and the newest of them."""

    each: list[Number]
    oldest: Number
    newest: Number

    @classmethod
    def of(cls, each: list[Number]) -> Timestamps:
        """`each` (not empty), with its oldest and newest: taken among its distinct values,
        a few in a batch, they are the same objects `min` and `max` of them all give (the
        first of equal ones)."""
        distinct = set(each)
        return cls(each, min(distinct), max(distinct))


def span(seconds: float) -> str:
    """A length of time in words, to the unit that reads best: `3,000 years`, `2 hours`."""
    for unit, length in (("year", _YEAR), ("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
        if seconds >= 2 * length:
            count = seconds / length
            return f"{count:.1e} {unit}s" if count >= 1e9 else f"{count:,.0f} {unit}s"
    return f"{seconds:,.0f} seconds"


def time_text(timestamp: float) -> str:
    """A timestamp as it was sent, in full unless it is far beyond any date."""
    return f"{timestamp:.0f}" if abs(timestamp) < 1e13 else f"{timestamp:.4g}"


def date_text(timestamp: float) -> str:
    """A time in UTC, to the second, for people: `2016-10-10 00:00:00 UTC`."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ahead_reason(timestamp: float, reference: float, of_what: str) -> str:
    """Why `timestamp` is refused as too far ahead of `reference`, the time `of_what`, with
    a hint when it reads as a time in a smaller unit than seconds."""
    ahead = span(timestamp - reference)
    reason = f"{time_text(timestamp)} is {ahead} ahead of {of_what} ({date_text(reference)})"
    for factor, unit in _SMALLER_UNITS:
        if PLAUSIBLE_SECONDS <= timestamp / factor <= max(reference, PLAUSIBLE_SECONDS):
            return f"{reason}: is it in {unit}?"
    return reason


@dataclass(frozen=True)
class EventTimes:
    """The timestamps a reader takes: none before 1970, none more than `max_skew` seconds
    ahead of the clock's `now`, and, in a running service, none in a minute evaluated
    already (before `evaluated_before`)."""

    now: float = float("inf")
    max_skew: float = DEFAULT_MAX_CLOCK_SKEW
    evaluated_before: float = 0.0

    @property
    def latest(self) -> float:
        return self.now + self.max_skew

    def problem(self, timestamp: float) -> str | None:
        """Why an event at `timestamp` cannot be taken; None if it can."""
        if timestamp < 0:
            return f"{time_text(timestamp)} is before 1970: expected Unix seconds"
        if timestamp > self.latest:
            return ahead_reason(timestamp, self.now, "the clock")
        if timestamp < self.evaluated_before:
            return (
                f"late: {time_text(timestamp)} is in a minute evaluated already "
                f"(every minute before {date_text(self.evaluated_before)} is)"
            )
        return None


ANY_TIME = EventTimes()
