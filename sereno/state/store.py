"""`sereno serve`'s state on disk: one SQLite file in WAL mode.

These tables make a restart, even after `kill -9`, pick up where the service was:

- `journal`: every accepted batch of events, written before the request is answered, and
  deleted once every minute it touches has been evaluated. A restart replays what is left, so
  the open minutes are whole again.
- `snapshot`: the engine's state (open alerts, `for:` timers, silence rules' last-seen times)
  and the watermark, written after each evaluated minute (and after alerts fired early) with
  the journal position it stands for.
- `history`: every episode that fired: as it fired, then as it ended. One still firing is
  read with its current values, which the snapshot holds: rewriting its row every minute
  would rewrite every open alert's row at every checkpoint.
- `outbox`: the notifications still to deliver, per receiver in the order they were queued;
  one is deleted only once its receiver has acknowledged it.
- `silences` and `acks`: the silences and acknowledgements made through the API, each
  written as it is made or ended (`state.records`), so that they outlive a restart.
- `dead_letter`: the journal's batches that could not be replayed at start (undecodable, or
  their evaluation failed), set aside with the reason so that the service can start.

A checkpoint writes the snapshot, the history of the episodes whose record changed (fired or
ended; a firing episode's current values are those of the snapshot), their notifications and
the journal's trim in one transaction, so the state on disk is always that of a whole number of
evaluated minutes, and every change it holds has its notifications queued.
With `synchronous=NORMAL` a commit survives the process being killed (not a power cut).
"""

from __future__ import annotations

import errno
import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec

from sereno.engine.alerts import AlertKey
from sereno.engine.engine import EngineState
from sereno.engine.lifecycle import Episode, episode_id
from sereno.engine.records import AckRecord, EpisodeRecord
from sereno.engine.windows import Watermark
from sereno.errors import SerenoError
from sereno.events.schema import Event

SCHEMA_VERSION = "4"
UPGRADABLE = ("1", "2", "3")  # older schemas that the script below brings up to date
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    newest REAL NOT NULL,
    events BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    rule TEXT NOT NULL,
    service TEXT NOT NULL,
    server TEXT NOT NULL,
    started INTEGER NOT NULL,
    fired INTEGER NOT NULL,
    ended INTEGER,
    record BLOB NOT NULL,
    PRIMARY KEY (rule, service, server, started)
);
CREATE INDEX IF NOT EXISTS history_by_fired ON history (fired);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    queued_at REAL NOT NULL,
    notice BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_receiver ON outbox (receiver, id);
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL,
    receiver TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    title TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_alert ON deliveries (alert_id, at);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (at);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    set_aside REAL NOT NULL,
    events INTEGER,
    reason TEXT NOT NULL,
    body BLOB NOT NULL
);
"""
BUSY_TIMEOUT_MS = 10_000
SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, from Python 3.11 on
DEFAULT_HISTORY_LIMIT = 1000


class StoreError(SerenoError):
    """The state file cannot be opened or used."""


class Snapshot(msgspec.Struct):
    """The engine's state after the journal's entries up to `seq` were evaluated."""

    seq: int
    watermark: Watermark
    engine: EngineState
    groups: bytes = b""  # the grouping receivers' groups, as the notification stage saves them


class DeadLetter(msgspec.Struct):
    """A journal entry set aside at start: its place in the journal, when it was set aside
    (seconds since the epoch), how many events it holds (None if that cannot be read) and why."""

    seq: int
    set_aside: float
    events: int | None
    reason: str


@dataclass(frozen=True)
class HistoryQuery:
    since: float = float("-inf")  # episodes still firing at or after this time
    rule: str | None = None
    limit: int = DEFAULT_HISTORY_LIMIT


def is_disk_full(error: BaseException) -> bool:
    """Whether a write failed for want of space: SQLITE_FULL, or ENOSPC from the system."""
    if isinstance(error, sqlite3.Error):
        full = getattr(error, "sqlite_errorcode", None) == SQLITE_FULL
        return full or str(error) == "database or disk is full"  # Python 3.10: no error code
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


def write_failure(path: str | Path, error: BaseException) -> str:
    """Why `path` could not be written, in one line: a full disk is called one."""
    if is_disk_full(error):
        return f"the disk holding {path} is full"
    return f"cannot write {path}: {error}"


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, waiting on locks."""
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as error:
        raise StoreError(f"cannot open the state file {path}: {error}") from None
    return connection


@contextmanager
def claim(path: str | Path) -> Iterator[None]:
    """Hold the state file for this process: two services on one file would undo each other.

    A lock on `FILE.lock`, which the system releases when the process ends, however it ends.
    """
    lock_path = f"{path}.lock"
    try:
        lock = open(lock_path, "a")  # noqa: SIM115 (held for the context's life)
    except OSError as error:
        raise StoreError(f"cannot open {lock_path}: {error.strerror or error}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"the state file {path} is in use by another sereno serve") from None
        yield


def create(path: str | Path) -> None:
    """Make the state file ready: create its tables, or check it is of our schema."""
    with closing(connect(path)) as connection:
        try:
            connection.executescript(SCHEMA)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and row[0] in UPGRADABLE:
                _upgrade_snapshot(connection)
            if row is None or row[0] in UPGRADABLE:
                connection.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"the state file {path} has schema version {row[0]}, "
                    f"this Sereno uses {SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot use {path} as a state file: {error}") from None


def _upgrade_snapshot(connection: sqlite3.Connection) -> None:
    """Bring a snapshot of an older schema up to date: its firing alerts were told when they
    fired (older versions told every alert that fired), from which reminders count."""
    row = connection.execute("SELECT body FROM snapshot").fetchone()
    if row is None:
        return
    snapshot = msgspec.msgpack.decode(row[0], type=Snapshot)
    snapshot.engine.episodes = [
        msgspec.structs.replace(e, notified_at=e.fired)
        if e.fired is not None and e.notified_at is None
        else e
        for e in snapshot.engine.episodes
    ]
    connection.execute(
        "UPDATE snapshot SET body = ? WHERE id = 1", (msgspec.msgpack.encode(snapshot),)
    )


class Journal:
    """The ingest side: records each accepted batch before it is answered."""

    def __init__(self, path: str | Path) -> None:
        self._connection = connect(path)
        self._encoder = msgspec.msgpack.Encoder()

    def append(self, events: Sequence[Event]) -> int:
        """Write a batch (in a transaction of its own); its sequence number."""
        newest = max(event.timestamp for event in events)
        cursor = self._connection.execute(
            "INSERT INTO journal (newest, events) VALUES (?, ?)",
            (newest, self._encoder.encode(events)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def close(self) -> None:
        self._connection.close()


class StateStore:
    """The evaluator's side: loads the state at start, checkpoints it after each minute."""

    def __init__(self, path: str | Path, event_type: type[Event]) -> None:
        self._path = path
        self._connection = connect(path)
        self._events = msgspec.msgpack.Decoder(list[event_type])  # type: ignore[valid-type]
        self._snapshot_encoder = msgspec.msgpack.Encoder()
        self._record_encoder = msgspec.json.Encoder()

    def load(self) -> Snapshot | None:
        try:
            row = self._connection.execute("SELECT body FROM snapshot").fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"the saved state cannot be read: {error}") from None
        if row is None:
            return None
        try:
            return msgspec.msgpack.decode(row[0], type=Snapshot)
        except msgspec.DecodeError as error:
            raise StoreError(f"the saved state cannot be read: {error}") from None

    def journal(
        self, on_dead_letter: Callable[[DeadLetter], None]
    ) -> Iterator[tuple[int, list[Event]]]:
        """Every batch still in the journal, in the order it was accepted; one that cannot be
        decoded is set aside, and `on_dead_letter` told."""
        try:
            rows = self._connection.execute("SELECT seq, events FROM journal ORDER BY seq")
            entries = rows.fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"the journal in {self._path} cannot be read: {error}") from None
        for seq, body in entries:
            try:
                events = self._events.decode(body)
            except (msgspec.DecodeError, TypeError) as error:
                on_dead_letter(self.set_aside(seq, f"cannot be decoded: {error}"))
                continue
            yield seq, events

    def set_aside(self, seq: int, reason: str) -> DeadLetter:
        """Move the journal's batch `seq` to the dead letters, with why."""
        connection = self._connection
        try:
            with transaction(connection):
                (body,) = connection.execute(
                    "SELECT events FROM journal WHERE seq = ?", (seq,)
                ).fetchone()
                letter = DeadLetter(seq, time.time(), _count_events(body), _one_line(reason))
                connection.execute(
                    "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?)",
                    (seq, letter.set_aside, letter.events, letter.reason, body),
                )
                connection.execute("DELETE FROM journal WHERE seq = ?", (seq,))
        except sqlite3.Error as error:
            raise StoreError(f"cannot set journal entry {seq} aside: {error}") from None
        return letter

    def checkpoint(
        self,
        snapshot: Snapshot,
        changed: Sequence[Episode],
        outgoing: Sequence[tuple[str, object]] = (),
    ) -> None:
        """Save the state, the history of the episodes that `changed`, queue the `outgoing`
        notices (receiver, notice) and drop the journal's batches all of whose minutes are
        evaluated: all at once."""
        connection = self._connection
        queued_at = time.time()
        try:
            with transaction(connection):
                connection.execute(
                    "INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?)",
                    (time.time(), self._snapshot_encoder.encode(snapshot)),
                )
                connection.executemany(
                    "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                    map(self._history_row, _fired(changed)),
                )
                connection.executemany(
                    "INSERT INTO outbox (receiver, queued_at, notice) VALUES (?, ?, ?)",
                    [
                        (receiver, queued_at, self._snapshot_encoder.encode(n))
                        for receiver, n in outgoing
                    ],
                )
                connection.execute(
                    "DELETE FROM journal WHERE newest < ?", (snapshot.watermark.closed_before,)
                )
        except sqlite3.Error as error:
            raise StoreError(f"cannot save the state: {write_failure(self._path, error)}") from None

    def _history_row(self, episode: Episode) -> tuple[object, ...]:
        """The row of an episode that fired: as it is now, if it is still firing."""
        key = episode.key
        record = self._record_encoder.encode(EpisodeRecord.of(episode))
        return (*key, episode.started, episode.fired, episode.ended, record)

    def close(self) -> None:
        self._connection.close()


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction, rolled back on an error if SQLite has not already done so (it
    does itself on some errors, a full disk among them)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _fired(changed: Sequence[Episode]) -> Iterable[Episode]:
    """Each episode of `changed` that fired, once, as it is latest."""
    latest = {(e.key, e.started): e for e in changed if e.fired is not None}
    return latest.values()


def _count_events(body: bytes) -> int | None:
    """How many events a journal entry holds, if it is an array at all."""
    try:
        return len(msgspec.msgpack.decode(body, type=list[msgspec.Raw]))
    except (msgspec.DecodeError, TypeError):
        return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def read_history(path: str | Path, query: HistoryQuery) -> bytes:
    """The episodes that fired and were still firing at or after `query.since`, the latest
    to fire first, as a JSON array; one still firing as of the latest checkpoint."""
    sql = "SELECT rule, service, server, started, ended, record FROM history"
    sql += " WHERE (ended IS NULL OR ended >= ?)"
    parameters: list[object] = [query.since]
    if query.rule is not None:
        sql += " AND rule = ?"
        parameters.append(query.rule)
    sql += " ORDER BY fired DESC, rule, service, server LIMIT ?"
    parameters.append(query.limit)
    with closing(connect(path)) as connection:
        connection.execute("BEGIN")  # the rows and the snapshot of one checkpoint
        try:
            rows = connection.execute(sql, parameters).fetchall()
            firing = any(row[4] is None for row in rows)
            snapshot = (
                connection.execute("SELECT body FROM snapshot").fetchone() if firing else None
            )
            ids = [episode_id(AlertKey(*row[:3]), row[3]) for row in rows]
            acked = _acks_of(connection, ids)
        finally:
            connection.execute("COMMIT")
    current = _open_records(snapshot[0]) if snapshot is not None else {}
    records = [current.get((*row[:3], row[3]), row[5]) for row in rows]
    return b"[" + b",".join(_with_acks(ids, acked, records)) + b"]"


def _acks_of(connection: sqlite3.Connection, ids: list[str]) -> dict[str, bytes]:
    """The saved acknowledgements of the alerts `ids`, by id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return dict(connection.execute(f"SELECT id, body FROM acks WHERE id IN ({marks})", ids))


def _with_acks(ids: list[str], acked: dict[str, bytes], records: list[bytes]) -> list[bytes]:
    """The records, each with its acknowledgement if someone had the alert."""
    if not acked:
        return records
    encoder, ack_decoder = msgspec.json.Encoder(), msgspec.msgpack.Decoder(AckRecord)
    return [
        encoder.encode(
            msgspec.structs.replace(
                msgspec.json.decode(record, type=EpisodeRecord),
                ack=ack_decoder.decode(acked[alert_id]),
            )
        )
        if alert_id in acked
        else record
        for alert_id, record in zip(ids, records, strict=True)
    ]


def _open_records(snapshot: bytes) -> dict[tuple[object, ...], bytes]:
    """The history records of the open episodes of a snapshot, by rule, service, server and
    start: a firing episode's row is written when it fires, its values as they are now live in
    the snapshot."""
    encoder = msgspec.json.Encoder()
    episodes = msgspec.msgpack.decode(snapshot, type=Snapshot).engine.episodes
    return {
        (*e.key, e.started): encoder.encode(EpisodeRecord.of(e))
        for e in episodes
        if e.fired is not None
    }


class Delivered(NamedTuple):
    """One attempt to tell a receiver of an alert: `outcome` is sent, failed or dropped,
    `detail` why it failed or was dropped, `title` the notification's title."""

    alert_id: str
    receiver: str
    at: float
    outcome: str
    detail: str
    title: str


def read_deliveries(path: str | Path, alert_id: str, limit: int = 500) -> list[Delivered]:
    """The latest `limit` attempts to tell receivers of the alert `alert_id`, oldest first."""
    with closing(connect(path)) as connection:
        rows = connection.execute(
            "SELECT alert_id, receiver, at, outcome, detail, title FROM deliveries"
            " WHERE alert_id = ? ORDER BY at DESC, rowid DESC LIMIT ?",
            (alert_id, limit),
        ).fetchall()
    return [Delivered(*row) for row in reversed(rows)]


def read_dead_letters(path: str | Path) -> list[DeadLetter]:
    """The journal entries set aside, in journal order."""
    if not Path(path).is_file():
        raise StoreError(f"no state file {path}")
    sql = "SELECT seq, set_aside, events, reason FROM dead_letter ORDER BY seq"
    try:
        with closing(connect(path)) as connection:
            tables = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'dead_letter'"
            ).fetchone()
            rows = connection.execute(sql).fetchall() if tables else []
    except sqlite3.DatabaseError as error:
        raise StoreError(f"cannot read the dead letters of {path}: {error}") from None
    return [DeadLetter(*row) for row in rows]
