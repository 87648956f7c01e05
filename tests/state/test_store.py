"""The state file under hostile conditions: a full disk, and journal entries that cannot be
replayed. Real SQLite files; the restarts are real `sereno serve` processes.

A full disk is made with `PRAGMA max_page_count` on the connection that writes (SQLite then
fails with SQLITE_FULL, as on a full disk), or, where the tests may mount one, with a small
tmpfs that really fills up."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sereno.engine.engine import Engine, EngineState
from sereno.engine.windows import Watermark, Window, Windows, window_start
from sereno.events.schema import Event
from sereno.live.evaluator import LiveEngine
from sereno.rules.rulefmt import load_default_rules
from sereno.state import store
from sereno.state.store import (
    HistoryQuery,
    Journal,
    StateStore,
    StoreError,
    create,
    journal_file,
    read_history,
)

from conftest import Server, event, json_lines, run_sereno
from live_service import T0, Clock, Service, disk, events


def fill_up(connection: sqlite3.Connection) -> None:
    """From now on, writing through `connection` finds the file's disk full."""
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages}")


def wait_until(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


def disks(count: int, timestamp: float) -> list[dict[str, Any]]:
    """A full disk on each of `count` servers."""
    return [disk(0.95, timestamp, server=f"s{n:04}") for n in range(count)]


# --- a full disk -------------------------------------------------------------------------


def test_a_full_disk_is_called_one_when_events_cannot_be_journalled(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    create(db)
    journal = Journal(db)
    fill_up(journal._connection)
    with pytest.raises(sqlite3.OperationalError) as raised:
        journal.append(events(*disks(500, T0 + 10)))
    journal.close()
    assert store.write_failure(db, raised.value) == f"the disk holding {db} is full"


def test_a_checkpoint_on_a_full_disk_says_so_and_leaves_the_state_file_usable(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    service = Service(db, load_default_rules(), Clock())
    service.push(disk(0.95, T0 + 10, server="a"))  # fires early: saved
    fill_up(service.store._connection)
    service.push(*disks(300, T0 + 20))  # 300 more alerts fired early: the snapshot grows
    wait_until(lambda: not service.live.running)
    assert not service.live.running
    assert str(service.live.failure) == f"cannot save the state: the disk holding {db} is full"
    # the connection is not left inside a transaction SQLite already rolled back
    assert not service.store._connection.in_transaction
    service.stop()


def test_after_a_full_disk_a_restart_carries_on_from_the_last_good_checkpoint(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    db = tmp_path / "sereno.db"
    service = Service(db, load_default_rules(), Clock())
    service.push(disk(0.95, T0 + 10, server="a"))
    fill_up(service.store._connection)
    service.push(*disks(300, T0 + 20))  # journalled (another connection), never saved
    wait_until(lambda: not service.live.running)
    service.stop()
    history = msgspec.json.decode(read_history(db, HistoryQuery()))
    assert [h["server"] for h in history] == ["a"]  # the last good checkpoint
    server = start_server("--db", str(db))  # space is free again
    alerts = server.alerts_until(lambda alerts: len(alerts) == 301)
    assert len(alerts) == 301  # the journal was replayed: the 300 fire again
    assert "Traceback" not in server.stop()
    history = msgspec.json.decode(read_history(db, HistoryQuery()))
    assert len(history) == 301


def _mount_small_disk(where: Path) -> bool:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return mounted.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem (tmpfs), where the tests may mount one (as root)."""
    where = tmp_path / "disk"
    try:
        mountable = _mount_small_disk(where)
    except FileNotFoundError:
        mountable = False
    if not mountable:
        pytest.skip("cannot mount a tmpfs here (the max_page_count tests stand in for it)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill_disk(where: Path) -> Path:
    """Fill the filesystem of `where` to the last byte; the file doing it."""
    filler = where / "filler"
    with open(filler, "wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_on_a_really_full_disk_ingest_says_so_and_a_restart_after_freeing_it_carries_on(
    small_disk: Path, start_server: Callable[..., Server]
) -> None:
    db = small_disk / "sereno.db"
    server = start_server("--db", str(db))
    server.post_lines(disk(0.95, T0 + 10, server="a"))
    server.alerts_until(lambda alerts: len(alerts) == 1)
    filler = fill_disk(small_disk)
    busy = json_lines(*(event(server=f"s{n}", value=0.5, padding="x" * 200) for n in range(2000)))
    refused = server.post(busy, "application/x-ndjson")
    assert refused.status_code == 503
    assert refused.json() == {"error": f"cannot store the events: the disk holding {db} is full"}
    server.process.terminate()
    server.process.wait(timeout=20)
    assert server.process.stderr is not None
    said = server.process.stderr.read().decode()
    assert f"sereno: cannot store events: the disk holding {db} is full" in said
    assert "Traceback" not in said
    filler.unlink()
    again = start_server("--db", str(db))
    assert [a["server"] for a in again.get("/alerts").json()] == ["a"]
    again.post_lines(disk(0.95, T0 + 20, server="b"))
    assert len(again.alerts_until(lambda alerts: len(alerts) == 2)) == 2
    assert "Traceback" not in again.stop()


# --- journal entries that cannot be replayed -----------------------------------------------


def corrupt_journal(db: Path) -> list[int]:
    """Garbage in the first journal entry, an array of the wrong things in the second; their
    sequence numbers."""
    with closing(sqlite3.connect(journal_file(db))) as connection, connection:
        seqs = [seq for (seq,) in connection.execute("SELECT seq FROM journal ORDER BY seq")]
        bodies = [b"not msgpack at all", msgspec.msgpack.encode([1, 2, 3])]
        for seq, body in zip(seqs, bodies, strict=False):
            connection.execute("UPDATE journal SET events = ? WHERE seq = ?", (body, seq))
    return seqs


def test_journal_entries_that_cannot_be_replayed_are_set_aside_and_the_service_starts(
    tmp_path: Path, start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    tokens = write_file("tokens", "s3cret\n")
    server = start_server("--token-file", str(tokens))
    for value, timestamp in ((0.5, T0 + 10), (0.5, T0 + 20), (0.95, T0 + 30)):
        answer = server.post(
            json_lines(disk(value, timestamp, server=f"at{timestamp - T0}")),
            "application/x-ndjson",
            authorization="Bearer s3cret",
        )
        assert answer.status_code == 202
    server.stop()  # T0 is open: the three batches are in the journal
    first, second, third = corrupt_journal(tmp_path / "sereno.db")

    again = start_server("--token-file", str(tokens))
    authorized = {"authorization": "Bearer s3cret"}
    assert again.get("/dead-letters").status_code == 401
    listed = again.get("/dead-letters", **authorized).json()
    assert [(d["seq"], d["events"]) for d in listed] == [(first, None), (second, 3)]
    assert listed[0]["reason"].startswith("cannot be decoded: ")
    assert [a["server"] for a in again.get("/alerts", **authorized).json()] == ["at30"]
    said = again.stop().splitlines()
    set_aside = [line for line in said if "set aside" in line]
    assert set_aside == [
        f"sereno: journal entry {first} (events unreadable) set aside, "
        f"{listed[0]['reason']}; see sereno dead-letters",
        f"sereno: journal entry {second} (3 events) set aside, "
        f"{listed[1]['reason']}; see sereno dead-letters",
    ]

    command = run_sereno("dead-letters", "--db", tmp_path / "sereno.db")
    assert command.returncode == 0, command.stderr
    lines = command.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == [str(first), str(second)]
    assert lines[1].split("  ")[2:] == ["3 events", listed[1]["reason"]]
    assert command.stderr == f"sereno: 2 dead letters in {tmp_path / 'sereno.db'}\n"
    as_json = run_sereno("dead-letters", "--db", tmp_path / "sereno.db", "--format", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == listed
    assert third not in [d["seq"] for d in listed]


def test_dead_letters_of_a_missing_state_file_are_a_one_line_error(tmp_path: Path) -> None:
    result = run_sereno("dead-letters", "--db", tmp_path / "nowhere.db")
    assert result.returncode == 2
    assert result.stderr == f"sereno: no state file {tmp_path / 'nowhere.db'}\n"
    assert not (tmp_path / "nowhere.db").exists()


@pytest.mark.parametrize(("schema", "table"), [("1", "outbox"), ("2", "dead_letter")])
def test_a_state_file_of_an_older_schema_is_brought_up_to_date(
    tmp_path: Path, schema: str, table: str
) -> None:
    db = tmp_path / "sereno.db"
    create(db)
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(f"DROP TABLE {table}")
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (schema,))
    create(db)
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT value FROM meta").fetchall() == [(store.SCHEMA_VERSION,)]
        assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_firing_alerts_of_an_older_snapshot_count_as_told_when_they_fired(
    tmp_path: Path,
) -> None:
    """Older versions told every alert that fired: after the upgrade their reminders and
    resolve notices go on as before."""
    db = tmp_path / "sereno.db"
    create(db)
    engine = Engine(load_default_rules(), lambda *_: None)
    for minute in range(2):
        engine.lifecycle.update(engine.evaluate_window(window_of(disks(1, T0 + 60 * minute))))
    [firing] = engine.firing()
    older = msgspec.structs.replace(firing, notified_at=None, tell=None)
    state = msgspec.structs.replace(engine.state(), episodes=[older])
    saved = store.Snapshot(7, Windows(30.0).watermark, state)
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(
            "INSERT INTO snapshot VALUES (1, 0, ?)", (msgspec.msgpack.encode(saved),)
        )
        connection.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
    create(db)
    loaded = StateStore(db, Event).load()
    assert loaded is not None
    [upgraded] = loaded.engine.episodes
    assert (upgraded.fired, upgraded.notified_at) == (firing.fired, firing.fired)


def window_of(raw: list[dict[str, Any]]) -> Window:
    """The minute of the events, all of one minute."""
    window = Window(window_start(raw[0]["timestamp"]))
    for record in raw:
        window.add(msgspec.convert(record, Event))
    return window


def test_a_journal_that_cannot_be_read_at_all_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    create(db)
    with closing(sqlite3.connect(journal_file(db))) as connection, connection:
        connection.execute("DROP TABLE journal")
    store = StateStore(db, Event)
    with pytest.raises(StoreError, match=r"the journal .*-events cannot be read: no such table"):
        list(store.journal(lambda letter: None))
    store.close()


# --- what a checkpoint writes ----------------------------------------------------------------


def test_a_firing_alerts_history_row_is_written_when_it_fires_and_shown_as_it_is_now(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    service = Service(db, load_default_rules(), Clock())
    service.push(disk(0.95, T0 + 10))
    for minute, value in ((1, 0.96), (2, 0.97), (3, 0.9)):  # each closes the minute before
        service.push(disk(value, T0 + 60 * minute + 35))
    service.stop()
    with closing(sqlite3.connect(db)) as connection:
        (row,) = connection.execute("SELECT record FROM history").fetchall()
    written = msgspec.json.decode(row[0])
    assert (written["windows"], written["peak"]) == (1, 0.95)  # as it fired: not rewritten
    (shown,) = msgspec.json.decode(read_history(db, HistoryQuery()))
    assert (shown["state"], shown["windows"], shown["peak"]) == ("firing", 3, 0.97)
    assert shown["last"]["value"] == 0.97


def test_a_journal_entry_whose_evaluation_fails_is_set_aside_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "state.db"
    create(db)
    journal = Journal(db)
    failing = journal.append(events(disk(0.5, T0 + 10), disk(0.5, T0 + 95)))  # closes T0
    later = journal.append(events(disk(0.95, T0 + 100)))
    journal.close()

    fire_early = Engine.fire_early

    def fail_on_the_first(engine: Engine, start: int, fresh: Sequence[Event]) -> None:
        if any(event.value == 0.5 for event in fresh):
            raise RuntimeError("no evaluating today")
        fire_early(engine, start, fresh)

    monkeypatch.setattr(Engine, "fire_early", fail_on_the_first)
    letters: list[store.DeadLetter] = []
    state = StateStore(db, Event)
    live = LiveEngine(
        load_default_rules(), 30, state, lambda e: None, on_dead_letter=letters.append
    )
    live.start()
    live.stop()
    state.close()
    assert [(d.seq, d.events, d.reason) for d in letters] == [
        (failing, 2, "cannot be evaluated: RuntimeError: no evaluating today")
    ]
    assert store.read_dead_letters(db) == letters
    assert [a.key.server for a in live.alerts()] == ["a"]  # the next entry was taken
    assert later not in [d.seq for d in letters]


# --- one alert: its episode by id, its minutes, the history's filters ----------------------


def resolved_disk_alert(db: Path) -> str:
    """A disk alert on server a that fires at T0, goes on at T0 + 60 and resolves at T0 + 120
    (and one on b that fires at T0 + 60 and goes on); the id of a's."""
    service = Service(db, load_default_rules(), Clock())
    service.push(disk(0.95, T0 + 10))
    service.push(disk(0.97, T0 + 95), disk(0.99, T0 + 95, server="b"))  # closes T0
    service.push(disk(0.3, T0 + 155), disk(0.99, T0 + 155, server="b"))  # closes T0 + 60
    service.push(disk(0.3, T0 + 215))  # closes T0 + 120
    service.stop()
    [record] = [r for r in msgspec.json.decode(read_history(db, HistoryQuery())) if r["ended"]]
    alert_id: str = record["id"]
    return alert_id


def test_an_ended_alerts_episode_and_minutes_are_read_by_its_id(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    alert_id = resolved_disk_alert(db)
    episode = store.read_episode(db, alert_id)
    assert episode is not None
    assert (episode.server, episode.state, episode.started, episode.ended) == (
        "a",
        "resolved",
        T0,
        T0 + 120,
    )
    assert store.read_alert_minutes(db, alert_id, T0 - 3600, T0 + 3600) == [
        store.AlertMinute(alert_id, T0, 0.95, True, "MEDIUM", "firing"),
        store.AlertMinute(alert_id, T0 + 60, 0.97, True, "MEDIUM", "firing"),
        store.AlertMinute(alert_id, T0 + 120, 0.3, False, "MEDIUM", "resolved"),
    ]
    latest_two = store.read_alert_minutes(db, alert_id, T0, T0 + 120, most=2)
    assert [m.minute for m in latest_two] == [T0 + 60, T0 + 120]  # oldest first
    assert [m.minute for m in store.read_alert_minutes(db, alert_id, T0, T0 + 60)] == [
        T0,
        T0 + 60,
    ]
    assert store.read_episode(db, "0123456789") is None
    assert store.read_alert_minutes(db, "0123456789", T0, T0 + 120) == []


def test_a_history_kept_before_episode_ids_is_given_them(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    alert_id = resolved_disk_alert(db)
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("DROP TABLE episode_ids")
    create(db)
    episode = store.read_episode(db, alert_id)
    assert episode is not None and episode.id == alert_id


def test_the_alerts_minutes_before_the_pruning_time_are_dropped_at_a_checkpoint(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    create(db)
    state = StateStore(db, Event)
    snapshot = store.Snapshot(0, Watermark(), EngineState())
    minutes = [
        store.AlertMinute("0123456789", T0 + 60 * n, n, True, "LOW", "firing") for n in (0, 1, 2)
    ]
    huge = store.AlertMinute("abcdefabcd", T0, 2**64 - 1, True, "LOW", "firing")
    state.checkpoint(snapshot, [], [], [*minutes, huge])
    assert store.read_alert_minutes(db, "abcdefabcd", T0, T0)[0].value == float(2**64 - 1)
    state.checkpoint(snapshot, [], [], [], prune_minutes_before=T0 + 60)
    state.close()
    assert store.read_alert_minutes(db, "0123456789", T0, T0 + 120) == minutes[1:]
    assert store.read_alert_minutes(db, "abcdefabcd", T0, T0 + 120) == []


@pytest.mark.parametrize(
    ("query", "servers"),
    [
        (HistoryQuery(), ["b", "a"]),  # the latest to fire first
        (HistoryQuery(until=T0 + 60), ["a"]),  # started before T0 + 60
        (HistoryQuery(until=T0 + 61), ["b", "a"]),
        (HistoryQuery(service="S"), ["b", "a"]),
        (HistoryQuery(service="Other"), []),
        (HistoryQuery(severity="MEDIUM"), ["b", "a"]),
        (HistoryQuery(severity="HIGH"), []),
        (HistoryQuery(since=T0 + 121, severity="MEDIUM"), ["b"]),  # a ended at T0 + 120
    ],
)
def test_the_history_is_filtered_by_start_service_and_severity(
    tmp_path: Path, query: HistoryQuery, servers: list[str]
) -> None:
    db = tmp_path / "state.db"
    resolved_disk_alert(db)
    records = msgspec.json.decode(read_history(db, query))
    assert [record["server"] for record in records] == servers


# --- the journal in a file of its own ---------------------------------------------------------


def test_a_state_file_that_held_its_journal_has_it_moved_numbering_and_all(
    tmp_path: Path,
) -> None:
    """Schema 4 kept the journal in the state file: brought up to date, its batches are in
    the journal file, and the next batch is numbered after every one it ever held."""
    db = tmp_path / "state.db"
    create(db)
    journal_file(db).unlink()
    batch = msgspec.msgpack.encode(events(disk(0.95, T0 + 10)))
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(
            "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, newest REAL NOT NULL, "
            "events BLOB NOT NULL)"
        )
        for seq in (38, 40):
            connection.execute("INSERT INTO journal VALUES (?, ?, ?)", (seq, T0 + 10, batch))
        connection.execute("UPDATE sqlite_sequence SET seq = 41 WHERE name = 'journal'")
        connection.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    create(db)
    state = StateStore(db, Event)
    moved = [(seq, [e.value for e in batch]) for seq, batch in state.journal(lambda letter: None)]
    state.close()
    assert moved == [(38, [0.95]), (40, [0.95])]
    journal = Journal(db)
    assert journal.append(events(disk(0.5, T0 + 20))) == 42
    journal.close()
    with closing(sqlite3.connect(db)) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        (schema,) = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    assert "journal" not in tables
    assert schema == store.SCHEMA_VERSION


def test_the_service_drops_the_batches_of_minutes_saved(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server()
    server.post_lines(disk(0.5, T0 + 10))
    server.post_lines(disk(0.5, T0 + 95))  # closes T0: the first batch is no longer needed
    server.metric_until("sereno_windows_evaluated_total 1.0")
    server.post_lines(disk(0.5, T0 + 100))  # the journal is trimmed as batches come
    deadline = time.monotonic() + 10
    while (kept := journal_rows(tmp_path / "sereno.db")) != [2, 3]:
        assert time.monotonic() < deadline, kept
        time.sleep(0.05)
    server.stop()


def journal_rows(db: Path) -> list[int]:
    with closing(sqlite3.connect(journal_file(db))) as connection:
        return [seq for (seq,) in connection.execute("SELECT seq FROM journal ORDER BY seq")]
