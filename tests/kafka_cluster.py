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
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write("up\n" if up else "down\n")
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
            }
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10)
            got: list[Message] = []
            for partition in sorted(metadata.topics[topic].partitions):
                consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
                got += _read_to_end(consumer, time.monotonic() + deadline)
            return got
        finally:
            consumer.close()


def _read_to_end(consumer: Consumer, deadline: float) -> list[Message]:
    got: list[Message] = []
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is None:
            got.append(message)
        elif error.code() == KafkaError._PARTITION_EOF:
            return got
    raise AssertionError(f"read {len(got)} messages, not to the end of the partition, in time")


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
