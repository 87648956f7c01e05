"""`sereno serve`'s state on disk: two SQLite files in WAL mode, the state file and, beside
it, its journal (`FILE-events`).

The journal file holds one table:

- `journal`: every accepted batch of events, written before the request is answered, and
  deleted once every minute it touches has been evaluated and saved. A restart replays what is
  left, so the open minutes are whole again. It has a file of its own so that an append never
  waits for a checkpoint: SQLite lets one connection write a file at a time, and a checkpoint
  after a busy minute writes for tens of milliseconds. Only the HTTP side writes it while the
  service runs (`Journal`: appends, and trims in a thread of its own); the evaluator reads it.

The state file's tables make a restart, even after `kill -9`, pick up where the service was:

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
- `episode_ids`: the history's episodes by their short id, to find one alert's row.
- `alert_minutes`: each open alert's evaluated minutes (the value its rule looked at, whether
  it matched, its severity and state after it), kept 7 days of event time. In minute order:
  a minute's rows go to the end of the table (rows in alert order would be written all over
  a large file at each checkpoint), and one alert's are read minute by minute.
- `delivery_keys`: `sereno worker`'s delivery stage only: the idempotency keys of the notices
  it queued (with the outbox row, `queued`, while it may wait there) or saw handled by another
  worker, kept a week, so that a notice read twice is delivered once (`kafka.deliverystage`).
  Added by `CREATE ... IF NOT EXISTS`, as older files get it at open: no new schema version.
- `dead_letter`: the journal's batches that could not be replayed at start (undecodable, or
  their evaluation failed), set aside with the reason so that the service can start.

A checkpoint writes the snapshot, the history of the episodes whose record changed (fired or
ended; a firing episode's current values are those of the snapshot), their notifications and
the alerts' minutes in one transaction, so the state on disk is always that of a whole number
of evaluated minutes, and every change it holds has its notifications queued. The journal is
trimmed after, up to the minutes saved: a batch left behind by a crash in between is only
replayed into minutes already closed, which takes nothing from it.
With `synchronous=NORMAL` a commit survives the process being killed (not a power cut).
"""

from __future__ import annotations

import errno
import fcntl
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import msgspec

from sereno.engine.alerts import AlertKey
from sereno.engine.engine import EngineState
from sereno.engine.lifecycle import Change, Episode, episode_id
from sereno.engine.records import AckRecord, EpisodeRecord
from sereno.engine.windows import WINDOW_SECONDS, Watermark
from sereno.errors import SerenoError
from sereno.events.schema import Event, Number

SCHEMA_VERSION = "5"
UPGRADABLE = ("1", "2", "3", "4")  # older schemas that `create` brings up to date
JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    newest REAL NOT NULL,
    events BLOB NOT NULL
);
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at REAL NOT NULL,
    body BLOB NOT NULL
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
    change TEXT NOT NULL,
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
CREATE TABLE IF NOT EXISTS episode_ids (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    service TEXT NOT NULL,
    server TEXT NOT NULL,
    started INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_minutes (
    alert_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    value,
    matched INTEGER NOT NULL,
    severity TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (minute, alert_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_keys (
    key TEXT PRIMARY KEY,
    at REAL NOT NULL,
    queued INTEGER
);
CREATE INDEX IF NOT EXISTS delivery_keys_by_queued ON delivery_keys (queued);
CREATE INDEX IF NOT EXISTS delivery_keys_by_time ON delivery_keys (at);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    set_aside REAL NOT NULL,
    events INTEGER,
    reason TEXT NOT NULL,
    body BLOB NOT NULL
);
"""
BUSY_TIMEOUT_MS = 10_000
TRIM_BATCHES = 32  # dropped from the journal in one transaction: an append waits for no more
SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, from Python 3.11 on
DEFAULT_HISTORY_LIMIT = 1000
MINUTES_KEPT = 7 * 86_400  # seconds of event time an alert's minutes are kept
MAX_ALERT_MINUTES = 1440  # the most minutes of one alert read back: its latest day
_INT64 = range(-(2**63), 2**63)  # the integers SQLite stores as they are


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


class AlertMinute(NamedTuple):
    """One evaluated minute of an open alert (or of the one that ended it): the value its
    rule looked at (None: no sample), whether it matched, and its severity and state after."""

    alert_id: str
    minute: int
    value: Number | None
    matched: bool
    severity: str
    state: str


@dataclass(frozen=True)
class HistoryQuery:
    since: float = float("-inf")  # episodes still firing at or after this time
    rule: str | None = None
    limit: int = DEFAULT_HISTORY_LIMIT
    until: float = float("inf")  # episodes that started before this time
    service: str | None = None
    severity: str | None = None


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


def journal_file(path: str | Path) -> Path:
    """The journal beside the state file `path`."""
    return Path(f"{path}-events")


def create(path: str | Path) -> None:
    """Make the state file and its journal ready: create their tables, or check the state
    file is of our schema (and bring an older one up to date)."""
    _create_journal(path)
    with closing(connect(path)) as connection:
        try:
            had_ids = _has_table(connection, "episode_ids")
            connection.executescript(SCHEMA)
            if not had_ids:
                _index_episode_ids(connection)
            row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is not None and row[0] in UPGRADABLE:
                _upgrade_snapshot(connection)
                _move_journal(connection, path)
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


def _create_journal(path: str | Path) -> None:
    journal = journal_file(path)
    with closing(connect(journal)) as connection:
        try:
            connection.executescript(JOURNAL_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot use {journal} as a journal: {error}") from None


def _move_journal(connection: sqlite3.Connection, path: str | Path) -> None:
    """Move the journal of a state file of schema 4 or older, which held it, to the journal
    file: its batches, and its numbering, which the snapshot's `seq` counts in. Done again
    whole if a crash stops it half way: a batch already moved is not moved twice."""
    if not _has_table(connection, "journal"):
        return
    connection.execute("ATTACH DATABASE ? AS moved", (str(journal_file(path)),))
    try:
        with transaction(connection):
            connection.execute("INSERT OR IGNORE INTO moved.journal SELECT * FROM main.journal")
            numbered = connection.execute(
                "SELECT seq FROM main.sqlite_sequence WHERE name = 'journal'"
            ).fetchone()
            if numbered is not None:  # sqlite_sequence has no key: one row a table, kept so
                connection.execute("DELETE FROM moved.sqlite_sequence WHERE name = 'journal'")
                connection.execute(
                    "INSERT INTO moved.sqlite_sequence (name, seq) SELECT 'journal', "
                    "max(?, coalesce((SELECT max(seq) FROM moved.journal), 0))",
                    numbered,
                )
            connection.execute("DROP TABLE main.journal")
    finally:
        connection.execute("DETACH DATABASE moved")


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,))
    return found.fetchone() is not None


def _index_episode_ids(connection: sqlite3.Connection) -> None:
    """Give the episodes of a history kept before `episode_ids` was their ids."""
    rows = connection.execute("SELECT rule, service, server, started FROM history").fetchall()
    connection.executemany(
        "INSERT OR IGNORE INTO episode_ids VALUES (?, ?, ?, ?, ?)",
        [(episode_id(AlertKey(*row[:3]), row[3]), *row) for row in rows],
    )


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
    """The ingest side: records each accepted batch before it is answered, and drops those
    whose minutes are all evaluated and saved, a few at a time in a thread of its own, so that
    an append waits for a short transaction at most (a lock of this process, not SQLite's busy
    wait, which sleeps in steps of up to 25 ms and more)."""

    def __init__(self, path: str | Path) -> None:
        self._path = journal_file(path)
        self._connection = connect(self._path)
        # no append copies the WAL into the file: the trimming thread does, after each trim
        self._connection.execute("PRAGMA wal_autocheckpoint = 0")
        self._encoder = msgspec.msgpack.Encoder()
        self._writing = threading.Lock()
        self._trim = threading.Condition()
        self._trim_before = float("-inf")  # wanted
        self._closing = False
        self._trimmer: threading.Thread | None = None  # started on the first trim

    def append(self, events: Sequence[Event]) -> int:
        """Write a batch (in a transaction of its own); its sequence number."""
        newest = max(event.timestamp for event in events)
        body = self._encoder.encode(events)
        with self._writing:
            cursor = self._connection.execute(
                "INSERT INTO journal (newest, events) VALUES (?, ?)", (newest, body)
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def trim(self, before: float) -> None:
        """Drop, soon, the batches whose newest event is before `before`: every minute they
        touch is evaluated, and saved."""
        with self._trim:
            if before <= self._trim_before:
                return
            self._trim_before = before
            if self._trimmer is None:
                self._trimmer = threading.Thread(target=self._trimming, name="sereno-journal")
                self._trimmer.start()
            self._trim.notify()

    def close(self) -> None:
        with self._trim:
            self._closing = True
            self._trim.notify()
        if self._trimmer is not None:
            self._trimmer.join()
        self._connection.close()

    def _trimming(self) -> None:
        done = float("-inf")
        with closing(connect(self._path)) as checkpointing:
            while (before := self._next_trim(done)) is not None:
                # one that fails (a full disk, say) is done again at the next trim: the batches
                # it leaves are only replayed into closed minutes at a restart
                with suppress(sqlite3.Error):
                    while self._drop_some(before):
                        pass
                    checkpointing.execute("PRAGMA wal_checkpoint(PASSIVE)")
                done = before

    def _next_trim(self, done: float) -> float | None:
        """The next trim's time, once wanted; None when closing with none left to do."""
        with self._trim:
            while self._trim_before == done and not self._closing:
                self._trim.wait()
            return None if self._trim_before == done else self._trim_before

    def _drop_some(self, before: float) -> bool:
        """Drop up to `TRIM_BATCHES` of the batches before `before`; whether more may be left."""
        with self._writing:
            dropped = self._connection.execute(
                "DELETE FROM journal WHERE seq IN "
                "(SELECT seq FROM journal WHERE newest < ? ORDER BY seq LIMIT ?)",
                (before, TRIM_BATCHES),
            )
        return dropped.rowcount == TRIM_BATCHES


class JournalReader:
    """The journal's batches one by one, by number, for an evaluator in a process of its own."""

    def __init__(self, path: str | Path) -> None:
        self._path = journal_file(path)
        self._connection = connect(self._path)
        self._decoders: dict[type[Event], msgspec.msgpack.Decoder[list[Event]]] = {}

    def batch(self, seq: int, event_type: type[Event]) -> list[Event]:
        """The batch `seq`, its events decoded as `event_type`; `StoreError` if the journal
        does not hold it whole."""
        decoder = self._decoders.get(event_type)
        if decoder is None:
            events = list[event_type]  # type: ignore[valid-type]
            decoder = self._decoders[event_type] = msgspec.msgpack.Decoder(events)
        try:
            row = self._connection.execute(
                "SELECT events FROM journal WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                raise StoreError(f"the journal in {self._path} has lost batch {seq}")
            return decoder.decode(row[0])
        except (sqlite3.Error, msgspec.DecodeError, TypeError) as error:
            where = f"batch {seq} of the journal in {self._path}"
            raise StoreError(f"{where} cannot be read: {error}") from None

    def close(self) -> None:
        self._connection.close()


class StateStore:
    """The evaluator's side: loads the state at start, checkpoints it after each minute."""

    def __init__(self, path: str | Path, event_type: type[Event]) -> None:
        self._path = path
        self._connection = connect(path)
        self._journal = connect(journal_file(path))  # read at start; an entry set aside
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
        self, on_dead_letter: Callable[[DeadLetter], None], saved_before: float = float("-inf")
    ) -> Iterator[tuple[int, list[Event]]]:
        """Every batch still in the journal, in the order it was accepted, but those wholly
        before `saved_before` (their minutes are saved: the journal may not be trimmed of them
        yet); one that cannot be decoded is set aside, and `on_dead_letter` told."""
        try:
            rows = self._journal.execute(
                "SELECT seq, events FROM journal WHERE newest >= ? ORDER BY seq", (saved_before,)
            )
            entries = rows.fetchall()
        except sqlite3.Error as error:
            journal = journal_file(self._path)
            raise StoreError(f"the journal {journal} cannot be read: {error}") from None
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
            (body,) = self._journal.execute(
                "SELECT events FROM journal WHERE seq = ?", (seq,)
            ).fetchone()
            letter = DeadLetter(seq, time.time(), _count_events(body), _one_line(reason))
            with transaction(connection):  # kept there before it is dropped here
                connection.execute(
                    "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?)",
                    (seq, letter.set_aside, letter.events, letter.reason, body),
                )
            self._journal.execute("DELETE FROM journal WHERE seq = ?", (seq,))
        except sqlite3.Error as error:
            raise StoreError(f"cannot set journal entry {seq} aside: {error}") from None
        return letter

    def checkpoint(
        self,
        snapshot: Snapshot,
        changed: Sequence[Episode],
        outgoing: Sequence[tuple[str, object]] = (),
        minutes: Sequence[AlertMinute] = (),
        prune_minutes_before: int | None = None,
    ) -> None:
        """Save the state, the history of the episodes that `changed`, queue the `outgoing`
        notices (receiver, notice), keep the alerts' `minutes` (dropping those before
        `prune_minutes_before`, if given): all at once."""
        connection = self._connection
        queued_at = time.time()
        try:
            with transaction(connection):
                connection.execute(
                    "INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?)",
                    (time.time(), self._snapshot_encoder.encode(snapshot)),
                )
                fired = list(_fired(changed))
                connection.executemany(
                    "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                    map(self._history_row, fired),
                )
                connection.executemany(
                    "INSERT OR IGNORE INTO episode_ids VALUES (?, ?, ?, ?, ?)",
                    [(e.id, *e.key, e.started) for e in changed if e.change is Change.FIRED],
                )
                _keep_minutes(connection, minutes, prune_minutes_before)
                connection.executemany(
                    "INSERT INTO outbox (receiver, queued_at, notice) VALUES (?, ?, ?)",
                    [
                        (receiver, queued_at, self._snapshot_encoder.encode(n))
                        for receiver, n in outgoing
                    ],
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
        self._journal.close()


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


def _keep_minutes(
    connection: sqlite3.Connection, minutes: Sequence[AlertMinute], prune_before: int | None
) -> None:
    if prune_before is not None:
        connection.execute("DELETE FROM alert_minutes WHERE minute < ?", (prune_before,))
    if minutes:
        connection.executemany(
            "INSERT OR REPLACE INTO alert_minutes VALUES (?, ?, ?, ?, ?, ?)",
            map(_minute_row, minutes),
        )


def _minute_row(minute: AlertMinute) -> AlertMinute:
    """The row as SQLite can store it: an integer beyond 64 bits as a float."""
    value = minute.value
    if isinstance(value, int) and value not in _INT64:
        return minute._replace(value=float(value))
    return minute


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
    """The episodes that fired, were still firing at or after `query.since` and started
    before `query.until` (of its rule, service and severity, if given), the latest to fire
    first, as a JSON array; one still firing as of the latest checkpoint."""
    sql = "SELECT rule, service, server, started, ended, record FROM history"
    sql += " WHERE (ended IS NULL OR ended >= ?) AND started < ?"
    parameters: list[object] = [query.since, query.until]
    for condition, value in (
        ("rule = ?", query.rule),
        ("service = ?", query.service),
        ("json_extract(CAST(record AS TEXT), '$.severity') = ?", query.severity),
    ):
        if value is not None:
            sql += f" AND {condition}"
            parameters.append(value)
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
    `change` what the notification told (fired, repeat, resolved...), `detail` why it failed
    or was dropped, `title` the notification's title."""

    alert_id: str
    receiver: str
    at: float
    outcome: str
    change: str
    detail: str
    title: str


def read_deliveries(path: str | Path, alert_id: str, limit: int = 500) -> list[Delivered]:
    """The latest `limit` attempts to tell receivers of the alert `alert_id`, oldest first."""
    with closing(connect(path)) as connection:
        rows = connection.execute(
            "SELECT alert_id, receiver, at, outcome, change, detail, title FROM deliveries"
            " WHERE alert_id = ? ORDER BY at DESC, rowid DESC LIMIT ?",
            (alert_id, limit),
        ).fetchall()
    return [Delivered(*row) for row in reversed(rows)]


def read_episode(path: str | Path, alert_id: str) -> EpisodeRecord | None:
    """The history's record of the episode whose short id is `alert_id` (None: none has it),
    as of its row: an episode still firing is read from the live engine instead."""
    sql = (
        "SELECT h.record FROM episode_ids AS i JOIN history AS h USING (rule, service, server,"
        " started) WHERE i.id = ?"
    )
    with closing(connect(path)) as connection:
        row = connection.execute(sql, (alert_id,)).fetchone()
    return msgspec.json.decode(row[0], type=EpisodeRecord) if row is not None else None


def read_alert_minutes(
    path: str | Path, alert_id: str, first: int, last: int, most: int = MAX_ALERT_MINUTES
) -> list[AlertMinute]:
    """The evaluated minutes of an alert from the minute at `first` to the one at `last`, the
    latest `most` of them, the oldest first: looked up minute by minute."""
    first = max(first, last - (most - 1) * WINDOW_SECONDS)
    sql = (
        "WITH RECURSIVE minutes (minute) AS (SELECT ? UNION ALL SELECT minute + ? FROM minutes"
        " WHERE minute + ? <= ?) SELECT a.alert_id, a.minute, value, matched, severity, state"
        " FROM minutes CROSS JOIN alert_minutes AS a ON a.minute = minutes.minute"
        " AND a.alert_id = ? ORDER BY a.minute"
    )
    step = WINDOW_SECONDS
    with closing(connect(path)) as connection:
        rows = connection.execute(sql, (first, step, step, last, alert_id)).fetchall()
    return [
        AlertMinute(alert_id, minute, value, bool(matched), severity, state)
        for alert_id, minute, value, matched, severity, state in rows
    ]


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
