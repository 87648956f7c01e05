"""A Kafka cluster for the tests: librdkafka's mock cluster in a process of its own
(`python -m sereno.kafka.mockcluster`), on 127.0.0.1, with the topics Sereno uses."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from sereno.kafka.settings import DEFAULT_ALERTS_TOPIC, DEFAULT_EVENTS_TOPIC, DEFAULT_STATE_TOPIC

PARTITIONS = 6


class KafkaCluster:
    def __init__(self, process: subprocess.Popen[str], bootstrap: str) -> None:
        self._process = process
        self.bootstrap = bootstrap

    def set_brokers(self, up: bool) -> None:
        """Every broker answers again (`up`), or stops answering."""
        self._tell("up" if up else "down")

    def fail_requests(self, api_key: int, error: int, count: int) -> None:
        """The next `count` requests of type `api_key` are answered with error code `error`."""
        self._tell(f"fail {api_key} {error} {count}")

    def _tell(self, command: str) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        assert self._process.stdout.readline() == "ok\n"

    def messages(self, topic: str, deadline: float = 30.0) -> list[Message]:
        """Every message of `topic` now, partition by partition in offset order (the
        records of transactions whatever became of them: the mock cluster shows them all)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "tests-reader",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
            }
        )
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            got = _read_to_end(consumer, set(partitions), time.monotonic() + deadline)
            return sorted(got, key=lambda m: (m.partition() or 0, m.offset() or 0))
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The offsets `group` has committed on `topic`, by partition (those it has)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            asked = [TopicPartition(topic, partition) for partition in partitions]
            return {
                tp.partition: tp.offset
                for tp in consumer.committed(asked, timeout=10)
                if tp.offset >= 0
            }
        finally:
            consumer.close()


def _read_to_end(consumer: Consumer, partitions: set[int], deadline: float) -> list[Message]:
    """What the consumer reads until each of `partitions` is at its end."""
    got: list[Message] = []
    left = set(partitions)
    while left and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is None:
            got.append(message)
        elif error.code() == KafkaError._PARTITION_EOF:
            left.discard(message.partition() or 0)
    if left:
        raise AssertionError(f"read {len(got)} messages, not to the end of {sorted(left)}, in time")
    return got


@contextmanager
def kafka_cluster(partitions: int = PARTITIONS) -> Iterator[KafkaCluster]:
    """A mock cluster of 3 brokers with Sereno's three topics, `partitions` each."""
    topics = [DEFAULT_EVENTS_TOPIC, DEFAULT_ALERTS_TOPIC, DEFAULT_STATE_TOPIC]
    # a group's first rebalance at once: the tests start their workers one by one anyway
    command = [sys.executable, "-m", "sereno.kafka.mockcluster", "--initial-rebalance-delay", "0"]
    for topic in topics:
        command += ["--topic", f"{topic}:{partitions}"]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        bootstrap = process.stdout.readline().strip()
        assert bootstrap.startswith("127.0.0.1:"), bootstrap
        yield KafkaCluster(process, bootstrap)
    finally:
        process.kill()
        process.wait()
