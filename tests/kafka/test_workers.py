"""The whole scale-out, as deployed: events pushed over HTTP (`sereno push`) to an ingest
node (`sereno serve --kafka`), evaluated by `sereno worker`s sharing the events topic's
partitions, and told by their delivery stages to a real webhook on 127.0.0.1. The notices
equal those `sereno FILE` gives on the same events, and none reaches the webhook twice: with
three workers, when one of them is killed mid-stream, and when a fourth joins mid-stream."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from peers import HttpReceiver

from .workers import (
    Worker,
    alert_messages,
    batch_notices,
    delivered_everything,
    notices_told,
    wait_for,
)
from conftest import DATA, Server, run_sereno
from kafka_cluster import PARTITIONS, KafkaCluster

SCENARIO = DATA / "scenarios" / "kafka_fleet.jsonl"  # written by kafka_fleet.py beside it
T0, CLOSING_MINUTE = 1476057600, 14
ALL = list(range(PARTITIONS))
ADD_PARTITIONS_TO_TXN, TOPIC_AUTHORIZATION_FAILED = 24, 29  # a request type, an error code


def _key(notice: dict[str, object]) -> tuple[str, ...]:
    return tuple(str(notice[k]) for k in ("at", "rule", "service", "server", "change"))


def _expected() -> list[dict[str, object]]:
    return sorted(batch_notices(run_sereno, SCENARIO, T0 + 60 * CLOSING_MINUTE), key=_key)


def _push_minutes(ingest: Server, tmp_path: Path, first: int, last: int) -> None:
    """`sereno push` of the scenario's events of minutes `first` to `last` (the closing
    minute is the scenario's last)."""
    lines = [
        line
        for line in SCENARIO.read_text().splitlines()
        if first <= (json.loads(line)["timestamp"] - T0) // 60 <= last
    ]
    part = tmp_path / f"minutes-{first}-{last}.jsonl"
    part.write_text("\n".join(lines) + "\n")
    pushed = run_sereno("push", part, "--url", f"{ingest.url}/events")
    assert pushed.returncode == 0, pushed.stderr


def _owned(workers: list[Worker]) -> list[int]:
    return sorted(p for worker in workers for p in worker.partitions())


def _deliveries(receiver: HttpReceiver) -> Counter[str]:
    """How many times each idempotency key reached the webhook (answered 2xx)."""
    return Counter(
        request.headers["idempotency-key"]
        for request in receiver.requests
        if 200 <= request.status < 300
    )


def _settled(cluster: KafkaCluster, receiver: HttpReceiver, expected: int) -> Callable[[], bool]:
    """Whether the webhook has every notice expected, and the delivery stages have committed
    every record of the alerts topic: nothing is on its way."""

    def check() -> bool:
        return len(_deliveries(receiver)) >= expected and delivered_everything(cluster)

    return check


def _check_against_the_batch_run(
    cluster: KafkaCluster, receiver: HttpReceiver, expected: list[dict[str, object]]
) -> None:
    """The alerts topic tells what the batch run tells (of the minutes before the closing
    one, which only the batch run's end of input closes for sure), each notice reached the
    webhook, and none did twice."""
    told = notices_told(alert_messages(cluster), T0 + 60 * CLOSING_MINUTE)
    assert sorted(told.values(), key=_key) == expected
    deliveries = _deliveries(receiver)
    assert [key for key, times in deliveries.items() if times > 1] == []
    assert {key.partition("/")[2] for key in told} <= set(deliveries)


@contextmanager
def _workers(
    cluster: KafkaCluster, tmp_path: Path, receiver: HttpReceiver, count: int
) -> Iterator[list[Worker]]:
    """`count` workers telling `receiver`, once they share every partition; each (and any the
    test adds to the list) stopped after, its log printed (shown when the test fails)."""
    workers = [Worker(f"w{n}", cluster, tmp_path, "--webhook", receiver.url) for n in range(count)]
    try:
        wait_for(lambda: _owned(workers) == ALL, f"the partitions shared by {count} workers")
        yield workers
    finally:
        for worker in workers:
            worker.stop()
            print(
                worker.name,
                *(line for line in worker.lines if "refused an" not in line),
                sep="\n  ",
            )


def test_three_workers_tell_what_the_batch_run_tells(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    expected = _expected()
    ingest = start_ingest(cluster.bootstrap)
    with _workers(cluster, tmp_path, http_receiver, 3):
        _push_minutes(ingest, tmp_path, 0, CLOSING_MINUTE)
        wait_for(_settled(cluster, http_receiver, len(expected)), "every notice delivered")
        _check_against_the_batch_run(cluster, http_receiver, expected)


def test_a_killed_workers_partitions_move_and_no_alert_is_lost_or_told_twice(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    expected = _expected()
    ingest = start_ingest(cluster.bootstrap)
    with _workers(cluster, tmp_path, http_receiver, 3) as workers:
        _push_minutes(ingest, tmp_path, 0, 5)
        by_then = [n for n in expected if int(str(n["at"])) < T0 + 60 * 4]
        wait_for(_settled(cluster, http_receiver, len(by_then)), "the notices of minutes 0-3")
        victim = max(workers, key=lambda worker: len(worker.partitions()))
        survivors = [worker for worker in workers if worker is not victim]
        victim.kill()
        moved = wait_for(lambda: _owned(survivors) == ALL, "the killed worker's partitions moved")
        print(f"the killed worker's partitions moved in {moved:.1f}s")
        _push_minutes(ingest, tmp_path, 6, CLOSING_MINUTE)
        wait_for(_settled(cluster, http_receiver, len(expected)), "every notice delivered")
        _check_against_the_batch_run(cluster, http_receiver, expected)


def test_a_worker_joining_mid_stream_takes_partitions_and_changes_no_alert(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    expected = _expected()
    ingest = start_ingest(cluster.bootstrap)
    with _workers(cluster, tmp_path, http_receiver, 3) as workers:
        _push_minutes(ingest, tmp_path, 0, 5)
        workers.append(Worker("w3", cluster, tmp_path, "--webhook", http_receiver.url))
        wait_for(lambda: bool(workers[3].partitions()), "the fourth worker given partitions")
        wait_for(lambda: _owned(workers) == ALL, "every partition owned once")
        _push_minutes(ingest, tmp_path, 6, CLOSING_MINUTE)
        wait_for(_settled(cluster, http_receiver, len(expected)), "every notice delivered")
        _check_against_the_batch_run(cluster, http_receiver, expected)


def test_a_worker_that_cannot_use_kafka_says_why_in_one_line_and_exits_2(
    cluster: KafkaCluster, tmp_path: Path
) -> None:
    config = tmp_path / "kafka.conf"
    config.write_text("sasl.password=hunter2\nsecurity.protocol\n")
    for args, said in [
        (
            ["--kafka", "kafka1"],
            "sereno: --kafka 'kafka1': expected HOST:PORT[,HOST:PORT...], such as "
            "kafka1:9092,kafka2:9092",
        ),
        (
            ["--kafka", cluster.bootstrap, "--events-topic", "elsewhere"],
            f"sereno: no topic 'elsewhere' at {cluster.bootstrap} (--create-topics makes it)",
        ),
        (
            ["--kafka", cluster.bootstrap, "--kafka-config", str(config)],
            "sereno: kafka.conf:2: expected key=value, such as security.protocol=SASL_SSL",
        ),
    ]:
        result = run_sereno("worker", *args, "--db", tmp_path / "w.db")
        assert (result.returncode, result.stderr) == (2, said + "\n")
        assert "hunter2" not in result.stdout + result.stderr


def test_a_transaction_the_cluster_refuses_is_aborted_and_made_again(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    http_receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    expected = _expected()
    ingest = start_ingest(cluster.bootstrap)
    with _workers(cluster, tmp_path, http_receiver, 1) as (worker,):
        # the worker's next transaction cannot add its partitions: it must be aborted
        cluster.fail_requests(ADD_PARTITIONS_TO_TXN, TOPIC_AUTHORIZATION_FAILED, 1)
        _push_minutes(ingest, tmp_path, 0, CLOSING_MINUTE)
        wait_for(_settled(cluster, http_receiver, len(expected)), "every notice delivered")
        _check_against_the_batch_run(cluster, http_receiver, expected)
        said = [line for line in worker.lines if "commit" in line]
        assert said[0].startswith("sereno: cannot commit to Kafka: ")
        assert said[0].endswith("; trying again")
        assert said[1] == "sereno: committed again, after 1 failed attempt"
        assert worker.stop() == 0
