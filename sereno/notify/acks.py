"""Acknowledgements: someone has an alert. An acknowledged alert is not reminded of until it
resolves or its severity rises above the one it had when it was acknowledged; its notices say
who has it. Kept in the state file by the alert's short id (one episode), on the wall clock;
the history shows them after the alert has ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sereno.engine.records import AckRecord
from sereno.errors import SerenoError
from sereno.notify.silences import length_problem
from sereno.state.records import KeyedRecords

DEFAULT_RETENTION = 30 * 24 * 3600.0  # seconds an ack is kept, for the history


class AckError(SerenoError):
    """An acknowledgement that cannot be made or taken back: why, in one line."""


class Acks:
    """The acknowledgements by alert id, each change saved at once (when there is a state
    file); read by the API's threads and the evaluation's. An ack is kept `retention`
    seconds, for the history, then dropped."""

    def __init__(
        self,
        stored: KeyedRecords[AckRecord] | None = None,
        clock: Callable[[], float] = time.time,
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        self._stored, self._clock, self._retention = stored, clock, retention
        loaded = stored.load_by_id() if stored is not None else {}
        self._acks: dict[str, AckRecord] = dict(loaded)
        self._lock = threading.Lock()
        self._listener: Callable[[str, AckRecord | None], None] = lambda alert_id, ack: None

    def tell_changes_to(self, listener: Callable[[str, AckRecord | None], None]) -> None:
        """Have `listener` told of each ack made (with it) or dropped (None), once saved."""
        self._listener = listener

    def unstored(self) -> Acks:
        """A copy that saves nothing: another process's, kept up to date with `keep`."""
        copy = Acks(None, self._clock, self._retention)
        with self._lock:
            copy._acks = dict(self._acks)
        return copy

    def keep(self, alert_id: str, ack: AckRecord | None) -> None:
        """Take an ack made (or, None, dropped) elsewhere."""
        with self._lock:
            if ack is None:
                self._acks.pop(alert_id, None)
            else:
                self._acks[alert_id] = ack

    def ack(self, alert_id: str, severity: str, by: str, comment: str) -> AckRecord:
        for field, text in (("by", by), ("comment", comment)):
            problem = length_problem(field, text)
            if problem is not None:
                raise AckError(problem)
        if not by.strip():
            raise AckError("say who has the alert (by)")
        now = self._clock()
        ack = AckRecord(by=by, at=now, comment=comment, severity=severity)
        with self._lock:
            self._acks[alert_id] = ack
            if self._stored is not None:
                self._stored.save(alert_id, ack)
            self._listener(alert_id, ack)
            self._prune(now)
        return ack

    def undo(self, alert_id: str) -> AckRecord:
        with self._lock:
            ack = self._acks.pop(alert_id, None)
            if ack is None:
                raise AckError(f"alert {alert_id} is not acknowledged")
            if self._stored is not None:
                self._stored.delete([alert_id])
            self._listener(alert_id, None)
        return ack

    def any(self) -> bool:
        with self._lock:
            return bool(self._acks)

    def get(self, alert_id: str) -> AckRecord | None:
        with self._lock:
            return self._acks.get(alert_id)

    def _prune(self, now: float) -> None:
        old = [i for i, ack in self._acks.items() if ack.at < now - self._retention]
        for alert_id in old:
            del self._acks[alert_id]
            self._listener(alert_id, None)
        if old and self._stored is not None:
            self._stored.delete(old)
