"""What a checkpoint costs with many alerts open: bytes written to the state file, and time.

Drives `sereno serve`'s evaluator in process (`LiveEngine`, with its `Journal` and
`StateStore` on a state file in a temporary directory), as ingest would: each minute, one
batch with a full disk on every one of `--alerts` servers, so that that many alerts fire in
the first minute and stay firing. After a warm-up minute it evaluates `--minutes` more and
reports, per evaluated minute: the bytes the process wrote (`wchar` of /proc/self/io: the
journal's batch, the state file and its WAL), the journal's share of them, the time spent in
`StateStore.checkpoint`, and the sizes of the snapshot and the history at the end.

    python benchmarks/checkpoint.py --alerts 4000 --minutes 20
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import msgspec

from sereno.events.schema import Event
from sereno.live.evaluator import LiveEngine
from sereno.rules.rulefmt import load_default_rules
from sereno.state.store import Journal, StateStore, create

T0 = 1476057600
LATENESS = 30


def written_bytes() -> int:
    """What this process has passed to write(2) and pwrite(2) so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def minute_of_full_disks(servers: int, minute: int) -> list[Event]:
    """One sample a server, late enough in the minute to close the minute before it."""
    timestamp = T0 + 60 * minute + LATENESS + 5
    return [
        Event(f"server{n:05}", "S", "DiskUsedPercentage", 0.95, timestamp, True)
        for n in range(servers)
    ]


def timed(checkpoint: Callable[..., None], spent: list[float]) -> Callable[..., None]:
    @functools.wraps(checkpoint)
    def measured(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        checkpoint(*args, **kwargs)
        spent.append(time.perf_counter() - started)

    return measured


def push(live: LiveEngine, journal: Journal, batch: list[Event]) -> None:
    """Journal and queue a batch, and wait until it is evaluated and checkpointed."""
    expected = live.stats.events_evaluated + len(batch)
    live.submit(journal.append(batch), batch)
    while live.stats.events_evaluated < expected and live.running:
        time.sleep(0.005)
    while not live._queue.empty() and live.running:
        time.sleep(0.005)


def sizes(db: Path) -> tuple[int, int, int]:
    """Bytes of the snapshot, of the history's records, and of the file with its WAL."""
    with closing(sqlite3.connect(db)) as connection:
        (snapshot,) = connection.execute("SELECT length(body) FROM snapshot").fetchone()
        (history,) = connection.execute("SELECT sum(length(record)) FROM history").fetchone()
    wal = Path(f"{db}-wal")
    on_disk = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return snapshot, history, on_disk


def measure(alerts: int, minutes: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "sereno.db"
        create(db)
        journal, store = Journal(db), StateStore(db, Event)
        spent: list[float] = []
        store.checkpoint = timed(store.checkpoint, spent)  # type: ignore[method-assign]
        live = LiveEngine(load_default_rules(), LATENESS, store, lambda episode: None)
        live.start()
        push(live, journal, minute_of_full_disks(alerts, 0))  # they fire early
        push(live, journal, minute_of_full_disks(alerts, 1))  # and the first minute closes
        spent.clear()
        journal_bytes = len(msgspec.msgpack.encode(minute_of_full_disks(alerts, 2)))
        before = written_bytes()
        for minute in range(2, 2 + minutes):
            push(live, journal, minute_of_full_disks(alerts, minute))
        written = (written_bytes() - before) / minutes
        live.stop()
        open_alerts = len(live.alerts())
        snapshot, history, on_disk = sizes(db)
        journal.close()
        store.close()
    print(f"{open_alerts:,} alerts firing, {minutes} minutes evaluated")
    print(
        f"  written a minute     {written / 1e6:8.2f} MB (of which the journal's batch "
        f"{journal_bytes / 1e6:.2f} MB)"
    )
    print(
        f"  checkpoints          {len(spent)}, median {statistics.median(spent) * 1000:.1f} ms, "
        f"max {max(spent) * 1000:.1f} ms"
    )
    print(
        f"  snapshot             {snapshot / 1e6:8.2f} MB ({snapshot / open_alerts:.0f} B an alert)"
    )
    print(f"  history records      {history / 1e6:8.2f} MB")
    print(f"  file + WAL           {on_disk / 1e6:8.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=4000, help="alerts firing (default 4000)")
    parser.add_argument("--minutes", type=int, default=20, help="minutes measured (default 20)")
    args = parser.parse_args()
    measure(args.alerts, args.minutes)


if __name__ == "__main__":
    main()
