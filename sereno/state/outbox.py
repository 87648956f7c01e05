"""The outbox of `sereno serve`'s state file: the notifications still to deliver, per
receiver in the order they were queued; one is deleted only once its receiver has
acknowledged it. The checkpoint that queues them is the store's (`StateStore.checkpoint`).

`sereno worker`'s delivery stage queues them itself, each once by its idempotency key
(`queue_once`, the `delivery_keys` table), and withdraws those of a partition it no longer
owns (`withdraw`): see `kafka.deliverystage`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.state.store import Delivered, Snapshot, connect, transaction

M = TypeVar("M")
SKIP_PAGE = 256  # messages read at a time when some alerts' messages are passed over
DELIVERIES_KEPT_SECONDS = 7 * 86400  # how long the log of attempts keeps them
PRUNE_EVERY_SECONDS = 3600.0
KEYS_KEPT_SECONDS = 7 * 86400  # how long an idempotency key is known after it was queued


@dataclass(frozen=True)
class Queued(Generic[M]):
    id: int
    queued_at: float  # time.time() when it was queued
    message: M


class Outbox(Generic[M]):
    """The delivery side: the messages queued for each receiver, oldest first. What a
    message is, and which alert it is about (`alert_of`), is the notification stage's."""

    def __init__(self, path: str | Path, message: type[M], alert_of: Callable[[M], str]) -> None:
        self._connection = connect(path)
        self._decoder = msgspec.msgpack.Decoder(message)
        self._alert_of = alert_of
        self._snapshot = msgspec.msgpack.Decoder(Snapshot)
        self._encoder = msgspec.msgpack.Encoder()
        self._lock = threading.Lock()  # one connection, shared by the receivers' workers
        self._pruned_at = float("-inf")

    def oldest(
        self, receiver: str, limit: int = 1, skip: Collection[str] = frozenset()
    ) -> list[Queued[M]]:
        """The `limit` messages queued longest for `receiver`, but those of the alerts in
        `skip`, in the order they were queued. The alert is inside the message, so the
        queue is read a page at a time until enough are found."""
        found: list[Queued[M]] = []
        after, page = 0, max(limit, SKIP_PAGE) if skip else limit
        while len(found) < limit:
            with self._lock:
                rows = self._connection.execute(
                    "SELECT id, queued_at, notice FROM outbox WHERE receiver = ? AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (receiver, after, page),
                ).fetchall()
            taken = (Queued(id, at, self._decoder.decode(body)) for id, at, body in rows)
            found += [queued for queued in taken if self._alert_of(queued.message) not in skip]
            if len(rows) < page:
                break
            after = rows[-1][0]
        return found[:limit]

    def open_alerts_if_drained(
        self, receiver: str, held: Collection[str] = frozenset()
    ) -> list[Episode] | None:
        """The open alerts as of the latest checkpoint, if everything queued for `receiver`
        has been delivered but the messages of the alerts `held` back (None if not): read at
        one point in time, so that what a receiver is told is never older than what it was
        last sent."""
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN")
            try:
                waiting = self._waiting(receiver, held)
                row = (
                    None if waiting else connection.execute("SELECT body FROM snapshot").fetchone()
                )
            finally:
                connection.execute("COMMIT")
        if waiting:
            return None
        return self._snapshot.decode(row[0]).engine.episodes if row is not None else []

    def drained(self, receiver: str, held: Collection[str] = frozenset()) -> bool:
        """Whether everything queued for `receiver` has been delivered (or given up on), but
        the messages of the alerts `held` back."""
        with self._lock:
            return not self._waiting(receiver, held)

    def _waiting(self, receiver: str, held: Collection[str]) -> bool:
        """Whether a message for `receiver` waits that is not of an alert `held` back."""
        if not held:
            query = "SELECT 1 FROM outbox WHERE receiver = ? LIMIT 1"
            return self._connection.execute(query, (receiver,)).fetchone() is not None
        rows = self._connection.execute("SELECT notice FROM outbox WHERE receiver = ?", (receiver,))
        return any(self._alert_of(self._decoder.decode(body)) not in held for (body,) in rows)

    def remove(self, ids: Iterable[int], attempts: Iterable[Delivered] = ()) -> None:
        """Delivered (or given up on): out of the queue, and what became of them logged
        (`attempts`), at once."""
        self._write([(i,) for i in ids], list(attempts))

    def log(self, attempts: Iterable[Delivered]) -> None:
        """Keep what became of attempts to deliver that left the messages queued (failed)."""
        self._write([], list(attempts))

    def _write(self, removed: list[tuple[int]], attempts: list[Delivered]) -> None:
        """Remove messages and log attempts in one transaction; the log keeps attempts a
        week, pruned once an hour."""
        now = max((attempt.at for attempt in attempts), default=self._pruned_at)
        with self._lock, transaction(self._connection):
            connection = self._connection
            connection.executemany("DELETE FROM outbox WHERE id = ?", removed)
            connection.executemany("INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)", attempts)
            if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                self._pruned_at = now
                connection.execute(
                    "DELETE FROM deliveries WHERE at < ?", (now - DELIVERIES_KEPT_SECONDS,)
                )

    def queue_once(self, keyed: Sequence[tuple[str, str, M]], now: float) -> list[int | None]:
        """Queue each (idempotency key, receiver, message) whose key is not known yet, and
        know its key from now on, in one transaction: the id each was queued as, None for
        one whose key was known (queued before, or handled elsewhere: see `remember`)."""
        ids: list[int | None] = []
        with self._lock, transaction(self._connection):
            connection = self._connection
            for key, receiver, message in keyed:
                known = "SELECT 1 FROM delivery_keys WHERE key = ?"
                if connection.execute(known, (key,)).fetchone() is not None:
                    ids.append(None)
                    continue
                queued = connection.execute(
                    "INSERT INTO outbox (receiver, queued_at, notice) VALUES (?, ?, ?)",
                    (receiver, now, self._encoder.encode(message)),
                ).lastrowid
                connection.execute("INSERT INTO delivery_keys VALUES (?, ?, ?)", (key, now, queued))
                ids.append(queued)
        return ids

    def remember(self, keys: Iterable[str], now: float) -> int:
        """Know these idempotency keys as handled (by another worker): how many were new."""
        with self._lock, transaction(self._connection):
            before = self._connection.total_changes
            self._connection.executemany(
                "INSERT OR IGNORE INTO delivery_keys VALUES (?, ?, NULL)",
                [(key, now) for key in keys],
            )
            return self._connection.total_changes - before

    def queued_ids(self) -> set[int]:
        """The ids of every message still queued, whatever its receiver."""
        with self._lock:
            return {id for (id,) in self._connection.execute("SELECT id FROM outbox")}

    def withdraw(self, ids: Iterable[int] | None = None) -> int:
        """Take these messages out of the queue undelivered (all of them if None), and forget
        their keys, so that they are queued again when read again: how many were queued."""
        with self._lock, transaction(self._connection):
            connection = self._connection
            if ids is None:
                connection.execute(
                    "DELETE FROM delivery_keys WHERE queued IN (SELECT id FROM outbox)"
                )
                return connection.execute("DELETE FROM outbox").rowcount
            rows = [(id,) for id in ids]
            connection.executemany("DELETE FROM delivery_keys WHERE queued = ?", rows)
            before = connection.total_changes
            connection.executemany("DELETE FROM outbox WHERE id = ?", rows)
            return connection.total_changes - before

    def prune_keys(self, now: float) -> int:
        """Forget the keys known for longer than `KEYS_KEPT_SECONDS` (but those of messages
        still queued): how many."""
        with self._lock, transaction(self._connection):
            return self._connection.execute(
                "DELETE FROM delivery_keys WHERE at < ? AND (queued IS NULL OR queued NOT IN "
                "(SELECT id FROM outbox))",
                (now - KEYS_KEPT_SECONDS,),
            ).rowcount

    def depths(self) -> dict[str, int]:
        """How many notifications wait, by receiver."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT receiver, count(*) FROM outbox GROUP BY receiver"
            ).fetchall()
        return dict(rows)

    def discard(self, receiver: str) -> int:
        """Remove what waits for a receiver that is no longer configured; how many."""
        with self._lock:
            return self._connection.execute(
                "DELETE FROM outbox WHERE receiver = ?", (receiver,)
            ).rowcount

    def close(self) -> None:
        self._connection.close()
