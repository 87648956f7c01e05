"""Alert lifecycle: pending, firing, resolved; the same alert tracked from minute to minute.

Pure: it is given each evaluated minute's result, in order, and keeps an `Episode` per alert
(identified by rule, service and server). An alert is *pending* from the first minute its rule
matches; it *fires* once the rule has matched in every minute for the rule's `for:` duration
(at once, without one); it is *resolved* by the first later minute in which its rule looked at
it and it did not match. A pending alert that misses a minute, or is looked at and does not
match, is forgotten: `for:` starts again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import msgspec

from sereno.engine.alerts import Alert, AlertKey, alert_key
from sereno.engine.windows import WINDOW_SECONDS
from sereno.events.schema import Number


class State(str, Enum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    DROPPED = "dropped"  # its rule is gone (a reload, a restart with other rules): not watched


class Episode(msgspec.Struct, frozen=True):
    """One alert from the minute its rule first matched to the minute it stopped matching.

    A value: each change of it is a new `Episode`, so that one handed on stays as it was.

    `started` is the start of the first matching minute, `fired` of the minute it fired,
    `ended` of the minute that resolved it (None while firing); `peak` is the highest value
    seen (for silence, the longest), `windows` the number of matching minutes and `last` the
    alert of the latest of them; `recovered` is the value seen in the minute that resolved it
    (for silence, the seconds since the server's event that ended it).
    """

    key: AlertKey
    severity: str
    state: State
    started: int
    last_window: int
    peak: Number
    windows: int
    last: Alert
    fired: int | None = None
    ended: int | None = None
    recovered: Number | None = None


@dataclass(frozen=True)
class WindowResult:
    """What the rules found in one minute: its alerts, and every alert they looked at, with
    the value they saw."""

    start: int
    alerts: list[Alert]
    looked_at: dict[AlertKey, Number]


class Lifecycle:
    """Tracks every alert across minutes. `update` takes the minutes in order."""

    def __init__(
        self,
        hold: Mapping[str, int],
        keep_resolved: bool = False,
        on_change: Callable[[Episode], None] | None = None,
    ) -> None:
        self._hold = hold  # each rule's `for:`, in seconds
        self._keep_resolved = keep_resolved
        self._on_change = on_change or _ignore  # told of every episode that changes state
        self._open: dict[AlertKey, Episode] = {}
        self._resolved: list[Episode] = []  # kept only if asked to, until taken

    def update(self, result: WindowResult) -> list[Alert]:
        """Take one minute's result; return its alerts that are firing."""
        start = result.start
        firing: list[Alert] = []
        matched: set[AlertKey] = set()
        for alert in result.alerts:
            key = alert_key(alert)
            matched.add(key)
            episode = self._continue(key, alert, start)
            if episode.state is State.FIRING:
                firing.append(alert)
        for key in [key for key in self._open if key not in matched]:
            self._miss(key, start, result.looked_at.get(key))
        return firing

    def fire_early(self, alert: Alert, start: int) -> None:
        """An alert of the minute at `start`, found before that minute is evaluated: fire it
        now if this match makes it fire. The minute's evaluation, when it closes, has the
        last word: it continues the episode, or resolves it if by then the alert no longer
        matches. Call it only for the oldest minute not yet evaluated."""
        key = alert_key(alert)
        episode = self._open.get(key)
        if episode is not None and episode.state is not State.PENDING:
            return  # firing already: the minute's evaluation will carry it on
        continued = episode is not None and not self._starts_anew(episode, start)
        started = episode.started if continued and episode is not None else start
        if start + WINDOW_SECONDS - started >= self._hold.get(key.rule, 0):
            self._continue(key, alert, start)

    @staticmethod
    def _starts_anew(episode: Episode | None, start: int) -> bool:
        """Whether a match in the minute at `start` begins a new episode: there is none, or
        only one pending since before a minute without data (`for:` starts again)."""
        return episode is None or (
            episode.state is State.PENDING and episode.last_window < start - WINDOW_SECONDS
        )

    def _continue(self, key: AlertKey, alert: Alert, start: int) -> Episode:
        episode = self._open.get(key)
        new = self._starts_anew(episode, start)
        if new:
            # new, or pending across a minute with no data at all: `for:` starts again
            matched = Episode(
                key, alert.severity, State.PENDING, start, start, alert.value, 1, alert
            )
        else:
            assert episode is not None
            matched = _matched_again(episode, alert, start)
        held = start + WINDOW_SECONDS - matched.started
        fires = matched.state is State.PENDING and held >= self._hold.get(key.rule, 0)
        if fires:
            matched = msgspec.structs.replace(matched, state=State.FIRING, fired=start)
        self._open[key] = matched
        if new or fires:
            self._on_change(matched)  # once: pending, or firing at once
        return matched

    def _miss(self, key: AlertKey, start: int, seen: Number | None) -> None:
        """The alert did not match in this minute: looked at (at the value `seen`) and
        false, or no data (None)."""
        episode = self._open[key]
        if episode.state is State.PENDING:
            del self._open[key]  # `for:` must hold in every minute: start again
        elif seen is not None:
            del self._open[key]
            resolved = msgspec.structs.replace(
                episode, state=State.RESOLVED, ended=start, recovered=seen
            )
            self._on_change(resolved)
            if self._keep_resolved:
                self._resolved.append(resolved)

    def restore(self, episodes: Iterable[Episode]) -> list[Episode]:
        """Take up the open alerts of an earlier run, or of the rules before a reload: those
        of rules this lifecycle has. The others are returned."""
        left: list[Episode] = []
        for episode in episodes:
            if episode.key.rule in self._hold:
                self._open[episode.key] = episode
            else:
                left.append(episode)
        return left

    def take_resolved(self) -> list[Episode]:
        """The episodes resolved since the last call, in the order they were resolved."""
        resolved, self._resolved = self._resolved, []
        return resolved

    def still_open(self) -> list[Episode]:
        """The alerts firing (and pending) now, in the order they started."""
        return sorted(self._open.values(), key=lambda episode: episode.started)


def _ignore(episode: Episode) -> None:
    pass


def _matched_again(episode: Episode, alert: Alert, start: int) -> Episode:
    """`episode` with its rule matching again in the minute at `start`."""
    # a rule may match a server twice in a minute: the minute counts once
    windows = episode.windows if episode.last_window == start else episode.windows + 1
    return msgspec.structs.replace(
        episode, last_window=start, windows=windows, last=alert, peak=max(episode.peak, alert.value)
    )


def episodes_in_order(episodes: Iterable[Episode], rule_order: Mapping[str, int]) -> list[Episode]:
    """By start, then rule order, then service and server: the order alerts are listed in."""
    return sorted(
        episodes,
        key=lambda e: (e.started, rule_order[e.key.rule], e.key.service, e.key.server),
    )
