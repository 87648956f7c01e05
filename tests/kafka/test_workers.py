"""Workers sharing the events topic's partitions give the alerts `sereno FILE` gives on the
same events: with three workers, after one of them is killed, and after a fourth joins."""

from __future__ import annotations

import json
from pathlib import Path

from .workers import (
    Worker,
    alert_messages,
    batch_notices,
    notices_told,
    produce_events,
    wait_for,
)
from conftest import DATA, run_sereno
from kafka_cluster import PARTITIONS, KafkaCluster

SCENARIO = DATA / "scenarios" / "kafka_fleet.jsonl"  # written by kafka_fleet.py beside it
T0, CLOSING_MINUTE = 1476057600, 14
ALL = list(range(PARTITIONS))
RECEIVER = ("--webhook", "http://127.0.0.1:9/")  # so that notices are planned


def _key(notice: dict[str, object]) -> tuple[str, ...]:
    return tuple(str(notice[k]) for k in ("at", "rule", "service", "server", "change"))


def test_three_workers_tell_what_the_batch_run_tells(cluster: KafkaCluster, tmp_path: Path) -> None:
    expected = sorted(batch_notices(run_sereno, SCENARIO, T0 + 60 * CLOSING_MINUTE), key=_key)
    workers = [
        Worker(f"w{n}", cluster, tmp_path, "--webhook", "http://127.0.0.1:9/") for n in range(3)
    ]
    try:
        wait_for(
            lambda: sorted(p for w in workers for p in w.partitions()) == list(range(PARTITIONS)),
            "the partitions shared by the three workers",
        )
        produce_events(cluster, SCENARIO.read_bytes().splitlines())
        wait_for(
            lambda: len(notices_told(alert_messages(cluster))) >= len(expected),
            f"the {len(expected)} notices the batch run tells",
        )
        told = sorted(notices_told(alert_messages(cluster)), key=_key)
        assert told == expected
    finally:
        for worker in workers:
            worker.stop()


def _minutes(before: int) -> tuple[list[bytes], list[bytes]]:
    """The scenario's lines of the minutes before minute `before`, and the others."""
    lines = SCENARIO.read_bytes().splitlines()
    split = T0 + 60 * before
    first = [line for line in lines if json.loads(line)["timestamp"] < split]
    return first, lines[len(first) :]


def _owned(workers: list[Worker]) -> list[int]:
    return sorted(p for worker in workers for p in worker.partitions())


def test_a_killed_workers_partitions_move_and_no_alert_is_lost(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    expected = sorted(batch_notices(run_sereno, SCENARIO, T0 + 60 * CLOSING_MINUTE), key=_key)
    first, rest = _minutes(6)
    workers = [Worker(f"w{n}", cluster, tmp_path, *RECEIVER) for n in range(3)]
    try:
        wait_for(lambda: _owned(workers) == ALL, "the partitions shared by the three workers")
        produce_events(cluster, first)
        told_by_then = [n for n in expected if int(str(n["at"])) < T0 + 60 * 4]
        wait_for(
            lambda: len(notices_told(alert_messages(cluster))) >= len(told_by_then),
            "the notices of minutes 0-3",
        )
        victim = max(workers, key=lambda worker: len(worker.partitions()))
        survivors = [worker for worker in workers if worker is not victim]
        victim.kill()
        moved = wait_for(lambda: _owned(survivors) == ALL, "the killed worker's partitions moved")
        print(f"the killed worker's partitions moved in {moved:.1f}s")
        produce_events(cluster, rest)
        wait_for(
            lambda: len(notices_told(alert_messages(cluster))) >= len(expected),
            f"the {len(expected)} notices the batch run tells",
        )
        assert sorted(notices_told(alert_messages(cluster)), key=_key) == expected
    finally:
        for worker in workers:
            worker.stop()


def test_a_worker_joining_mid_stream_takes_partitions_and_changes_no_alert(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    expected = sorted(batch_notices(run_sereno, SCENARIO, T0 + 60 * CLOSING_MINUTE), key=_key)
    first, rest = _minutes(6)
    workers = [Worker(f"w{n}", cluster, tmp_path, *RECEIVER) for n in range(3)]
    try:
        wait_for(lambda: _owned(workers) == ALL, "the partitions shared by the three workers")
        produce_events(cluster, first)
        workers.append(Worker("w3", cluster, tmp_path, *RECEIVER))
        wait_for(lambda: bool(workers[3].partitions()), "the fourth worker given partitions")
        wait_for(lambda: _owned(workers) == ALL, "every partition owned once")
        produce_events(cluster, rest)
        wait_for(
            lambda: len(notices_told(alert_messages(cluster))) >= len(expected),
            f"the {len(expected)} notices the batch run tells",
        )
        assert sorted(notices_told(alert_messages(cluster)), key=_key) == expected
    finally:
        for worker in workers:
            worker.stop()
