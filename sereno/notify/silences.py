"""Silences: for a while, the alerts that a set of matchers selects are not told to anyone.

A `Silence` is a value, checked when built, so that a stored one is always usable. The
`SilenceBook` holds them and is pure, as the other cores are: every call that depends on time
is given it, and new ids come from a function the caller supplies. The rules follow
Alertmanager's: a silence is pending before it starts, active from its start until its end (or
until it is expired by hand), expired after; at least one of its matchers must not match an
empty label, so that no silence covers every alert; expired silences are kept a while so that
one can see what was silenced, then pruned.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import msgspec

from sereno.errors import SerenoError
from sereno.notify.matchers import Matcher, describe, matches
from sereno.rules.rulefmt import parse_duration
from sereno.text import iso_time

SilenceState = Literal["pending", "active", "expired"]

MAX_TEXT_LENGTH = 1000  # of created_by and comment, which are shown in listings
DEFAULT_RETENTION = 5 * 24 * 3600.0  # seconds an ended silence is kept before it is pruned
_ID_ATTEMPTS = 10


class SilenceError(SerenoError):
    """A silence that cannot be made or changed: the message says why, in one line."""


class UnknownSilence(SilenceError):
    """No silence has this id (or it has been pruned)."""


class Silence(msgspec.Struct, frozen=True):
    """Alerts that all the matchers select are silenced from `starts_at` until `ends_at`, or
    until `expired_at` if it was expired before its end. Times are seconds since the epoch."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float
    expired_at: float | None = None

    def __post_init__(self) -> None:
        problem = _problem_of(self)
        if problem is not None:
            raise SilenceError(problem)

    @property
    def ended_at(self) -> float:
        """When it stops silencing: its end, or its expiry if that came first."""
        if self.expired_at is None:
            return self.ends_at
        return min(self.ends_at, self.expired_at)


def state(silence: Silence, now: float) -> SilenceState:
    """Whether the silence has yet to start, silences now, or no longer does."""
    if now >= silence.ended_at:
        return "expired"
    if now < silence.starts_at:
        return "pending"
    return "active"


def new_silence_id() -> str:
    """An id no one can guess (128 random bits) and that fits in a URL."""
    while True:
        silence_id = secrets.token_urlsafe(16)
        # An id typed after `sereno silence expire` must not read as an option.
        if not silence_id.startswith("-"):
            return silence_id


def parse_silence_duration(text: str) -> int:
    """Seconds in how long a silence lasts, written as 30m, 1h or 2h30m."""
    seconds = parse_duration(text)
    if seconds is None:
        raise SilenceError(f"duration {text!r}: expected a duration such as 30m, 1h or 2h30m")
    if seconds <= 0:
        raise SilenceError(f"duration {text!r}: a silence must last longer than 0s")
    return seconds


class SilenceListing(msgspec.Struct, frozen=True):
    """The silences at one time, by state: the active ones ending soonest first, the pending
    ones starting soonest first, the expired ones ended most recently first."""

    active: tuple[Silence, ...]
    pending: tuple[Silence, ...]
    expired: tuple[Silence, ...]


class SilenceBook:
    """Every silence not yet pruned, by id. Pure: given the time in every call that needs it."""

    def __init__(
        self,
        silences: Iterable[Silence] = (),
        *,
        retention: float = DEFAULT_RETENTION,
        new_id: Callable[[], str] = new_silence_id,
    ) -> None:
        self.retention = retention
        self._new_id = new_id
        self._silences: dict[str, Silence] = {silence.id: silence for silence in silences}

    @property
    def silences(self) -> tuple[Silence, ...]:
        """All the silences kept, in the order they were added; what a caller saves."""
        return tuple(self._silences.values())

    def add(
        self,
        matchers: Iterable[Matcher],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
    ) -> Silence:
        """A new silence, kept and returned. One that would start in the past starts now, as
        in Alertmanager; one that would already have ended is refused."""
        if ends_at <= now:
            raise SilenceError(
                f"a silence must end in the future: it ends {_when(ends_at)}, now is {_when(now)}"
            )
        silence = Silence(
            id=self._unused_id(),
            matchers=tuple(matchers),
            starts_at=max(starts_at, now),
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            updated_at=now,
        )
        self._silences[silence.id] = silence
        return silence

    def keep(self, silence: Silence) -> None:
        """Keep a silence as it was made or expired by another book."""
        self._silences[silence.id] = silence

    def get(self, silence_id: str) -> Silence:
        """The silence with this id; UnknownSilence if there is none."""
        try:
            return self._silences[silence_id]
        except KeyError:
            raise UnknownSilence(f"no silence has the id {silence_id!r}") from None

    def expire(self, silence_id: str, now: float) -> Silence:
        """Ends a pending or active silence now; the expired silence is kept and returned."""
        silence = self.get(silence_id)
        if state(silence, now) == "expired":
            raise SilenceError(
                f"silence {silence_id!r} has already expired, {_when(silence.ended_at)}"
            )
        expired = msgspec.structs.replace(silence, expired_at=now, updated_at=now)
        self._silences[silence_id] = expired
        return expired

    def listing(self, now: float) -> SilenceListing:
        """The silences by state at `now`."""
        by_state: dict[SilenceState, list[Silence]] = {"active": [], "pending": [], "expired": []}
        for silence in self._silences.values():
            by_state[state(silence, now)].append(silence)
        return SilenceListing(
            active=tuple(sorted(by_state["active"], key=lambda s: (s.ended_at, s.id))),
            pending=tuple(sorted(by_state["pending"], key=lambda s: (s.starts_at, s.id))),
            expired=tuple(sorted(by_state["expired"], key=lambda s: (-s.ended_at, s.id))),
        )

    def silencing(self, labels: Mapping[str, str], now: float) -> list[str]:
        """The ids of the active silences whose matchers all select these labels, the oldest
        first; an alert is silenced if the list is not empty."""
        found = [
            silence
            for silence in self._silences.values()
            if state(silence, now) == "active" and matches(silence.matchers, labels)
        ]
        return [silence.id for silence in sorted(found, key=lambda s: (s.starts_at, s.id))]

    def selecting(self, labels: Mapping[str, str], now: float) -> list[Silence]:
        """The active and pending silences whose matchers all select these labels, the
        soonest to start first: those that silence the alert now or will."""
        found = [
            silence
            for silence in self._silences.values()
            if state(silence, now) != "expired" and matches(silence.matchers, labels)
        ]
        return sorted(found, key=lambda s: (s.starts_at, s.id))

    def ended_between(self, before: float, now: float) -> list[Silence]:
        """The silences that stopped silencing in (before, now], the earliest first, so that the
        caller can tell of the alerts they covered that still fire. A silence expired while
        still pending silenced nothing and is not among them."""
        ended = [
            silence
            for silence in self._silences.values()
            if before < silence.ended_at <= now and silence.starts_at < silence.ended_at
        ]
        return sorted(ended, key=lambda s: (s.ended_at, s.id))

    def prune(self, now: float) -> list[str]:
        """Drops the silences that ended more than the retention ago; returns their ids."""
        dropped = [
            silence_id
            for silence_id, silence in self._silences.items()
            if silence.ended_at <= now - self.retention
        ]
        for silence_id in dropped:
            del self._silences[silence_id]
        return dropped

    def _unused_id(self) -> str:
        for _ in range(_ID_ATTEMPTS):
            silence_id = self._new_id()
            if silence_id not in self._silences:
                return silence_id
        # Only a broken id function can get here: 128 random bits do not collide.
        raise RuntimeError(f"the id function gave {_ID_ATTEMPTS} ids already in use")


def _problem_of(silence: Silence) -> str | None:
    """What makes the silence unusable, or None if it is fine."""
    for problem in (
        _id_problem(silence.id),
        matchers_problem(silence.matchers),
        _times_problem(silence),
        _text_problem("created_by", silence.created_by),
        _text_problem("comment", silence.comment),
    ):
        if problem is not None:
            return problem
    return None


def _id_problem(silence_id: str) -> str | None:
    if not silence_id or len(silence_id) > MAX_TEXT_LENGTH or not silence_id.isprintable():
        return f"bad id {silence_id[:40]!r}: expected up to {MAX_TEXT_LENGTH} printable characters"
    return None


def matchers_problem(matchers: tuple[Matcher, ...], what: str = "silence") -> str | None:
    """Why these matchers cannot make a `what` (a silence, a maintenance window), if so."""
    if not matchers:
        return f"a {what} needs at least one matcher"
    if all(matcher.matches({}) for matcher in matchers):
        # Alertmanager's rule: such a silence would silence every alert, by a slip of the hand.
        written = ", ".join(describe(matcher) for matcher in matchers)
        return (
            f"every matcher also matches an empty label ({written}), so the {what} would"
            " cover every alert; at least one must not"
        )
    return None


def _times_problem(silence: Silence) -> str | None:
    times = [silence.starts_at, silence.ends_at, silence.updated_at]
    if silence.expired_at is not None:
        times.append(silence.expired_at)
    if not all(math.isfinite(time) for time in times):
        return "its times must be finite numbers of seconds"
    if silence.ends_at <= silence.starts_at:
        return (
            f"a silence must end after it starts: it starts {_when(silence.starts_at)}"
            f" and ends {_when(silence.ends_at)}"
        )
    return None


def _text_problem(field: str, text: str) -> str | None:
    if not text.strip():
        return f"{field} is empty; say who silences and why"
    return length_problem(field, text)


def length_problem(field: str, text: str) -> str | None:
    """Why a text people wrote is too long to show with what it is about, if it is."""
    if len(text) > MAX_TEXT_LENGTH:
        return f"{field} is {len(text)} characters long, more than {MAX_TEXT_LENGTH}"
    return None


def _when(timestamp: float) -> str:
    """A time for a message; one too far off for a date is shown as the number given."""
    try:
        return iso_time(timestamp)
    except (OverflowError, ValueError, OSError):
        return repr(timestamp)
