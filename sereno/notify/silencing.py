"""The silences of a running service: the book, kept in the state file, read by the API's
threads and the evaluation's, on the wall clock (silences are made by people, for hours of
their day, as in Alertmanager).

`ended()` tells the evaluation which silences stopped silencing since it last asked, so that
the alerts they covered and that still fire can be told then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta

from sereno.notify.matchers import Matcher
from sereno.notify.silences import Silence, SilenceBook, SilenceListing, SilenceState, state
from sereno.state.records import KeyedRecords


class Silences:
    """The book behind a lock, each change saved at once (when there is a state file)."""

    def __init__(
        self,
        stored: KeyedRecords[Silence] | None = None,
        clock: Callable[[], float] = time.time,
        book: SilenceBook | None = None,
    ) -> None:
        self._stored, self._clock = stored, clock
        self._book = book or SilenceBook(stored.load() if stored is not None else ())
        self._lock = threading.Lock()
        self._asked = clock()  # when the evaluation last asked which silences ended
        self._listener: Callable[[Silence], None] = lambda silence: None

    def tell_changes_to(self, listener: Callable[[Silence], None]) -> None:
        """Have `listener` told of each silence made or expired, once it is saved."""
        self._listener = listener

    def unstored(self) -> Silences:
        """A copy of the book that saves nothing: another process's, kept up to date with
        `keep`."""
        with self._lock:
            book = SilenceBook(self._book.silences, retention=self._book.retention)
        return Silences(None, self._clock, book)

    def keep(self, silence: Silence) -> None:
        """Take a silence as made or expired elsewhere."""
        with self._lock:
            self._book.keep(silence)

    def now(self) -> float:
        return self._clock()

    def state(self, silence: Silence) -> SilenceState:
        return state(silence, self._clock())

    def any_active(self) -> bool:
        """Whether any silence is active now (else nothing is silenced)."""
        with self._lock:
            now = self._clock()
            return any(state(silence, now) == "active" for silence in self._book.silences)

    def add(
        self,
        matchers: Iterable[Matcher],
        until: float | timedelta,
        created_by: str,
        comment: str,
        starts_at: float | None = None,
    ) -> Silence:
        """A silence from `starts_at` (or now) `until` a time or for a duration, kept."""
        with self._lock:
            now = self._clock()
            starts = now if starts_at is None else max(starts_at, now)
            ends = starts + until.total_seconds() if isinstance(until, timedelta) else until
            silence = self._book.add(
                matchers,
                starts_at=starts,
                ends_at=ends,
                created_by=created_by,
                comment=comment,
                now=now,
            )
            self._save(silence)
            self._prune(now)
        return silence

    def expire(self, silence_id: str) -> Silence:
        with self._lock:
            silence = self._book.expire(silence_id, self._clock())
            self._save(silence)
        return silence

    def get(self, silence_id: str) -> Silence:
        with self._lock:
            return self._book.get(silence_id)

    def listing(self) -> SilenceListing:
        with self._lock:
            return self._book.listing(self._clock())

    def silencing(self, labels: Mapping[str, str]) -> list[str]:
        """The ids of the active silences that select these labels."""
        with self._lock:
            return self._book.silencing(labels, self._clock())

    def selecting(self, labels: Mapping[str, str]) -> list[tuple[Silence, SilenceState]]:
        """The active and pending silences that select these labels, each with its state."""
        with self._lock:
            now = self._clock()
            return [(s, state(s, now)) for s in self._book.selecting(labels, now)]

    def ended(self) -> list[Silence]:
        """The silences that stopped silencing since the last call."""
        with self._lock:
            now = self._clock()
            ended = self._book.ended_between(self._asked, now)
            self._asked = now
            return ended

    def _save(self, silence: Silence) -> None:
        if self._stored is not None:
            self._stored.save(silence.id, silence)
        self._listener(silence)

    def _prune(self, now: float) -> None:
        dropped = self._book.prune(now)
        if dropped and self._stored is not None:
            self._stored.delete(dropped)
