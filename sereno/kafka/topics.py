"""The topics at start: created when missing if asked (`--create-topics`), then checked;
writing to them once the producer has room; and leaving a consumer group cleanly."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from sereno.kafka.settings import KafkaError, KafkaSettings

METADATA_TIMEOUT = 10.0
CREATE_TIMEOUT = 30.0


def prepare_topics(settings: KafkaSettings, names: list[str]) -> dict[str, int]:
    """Each topic's partition count, after creating the missing ones if the settings ask for
    it; a topic still missing is a `KafkaError`."""
    try:
        admin = AdminClient(settings.admin_config())
    except KafkaException as error:
        raise KafkaError(f"the Kafka client settings are refused: {error.args[0].str()}") from None
    counts = partition_counts(admin, names)
    missing = [name for name in names if name not in counts]
    if missing and settings.create is not None:
        _create(admin, settings, missing)
        counts = partition_counts(admin, names)
        missing = [name for name in names if name not in counts]
    if missing:
        hint = "" if settings.create is not None else " (--create-topics makes it)"
        raise KafkaError(f"no topic {missing[0]!r} at {settings.bootstrap}{hint}")
    return counts


def partition_counts(admin: AdminClient, names: list[str]) -> dict[str, int]:
    """How many partitions each topic of `names` that exists has."""
    try:
        metadata = admin.list_topics(timeout=METADATA_TIMEOUT)
    except KafkaException as error:
        raise KafkaError(f"cannot reach Kafka: {error.args[0].str()}") from None
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name in names and topic.error is None
    }


def _create(admin: AdminClient, settings: KafkaSettings, names: list[str]) -> None:
    creation = settings.create
    assert creation is not None
    state = {"cleanup.policy": "compact"}  # only the latest state of a partition matters
    topics = [
        NewTopic(
            name,
            creation.partitions,
            creation.replication,
            config=state if name == settings.topics.state else {},
        )
        for name in names
    ]
    for name, future in admin.create_topics(topics, request_timeout=CREATE_TIMEOUT).items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].name() != "TOPIC_ALREADY_EXISTS":  # made meanwhile by another
                raise KafkaError(f"cannot create topic {name!r}: {error.args[0].str()}") from None


ANY_PARTITION = -1  # librdkafka's: the partitioner places the record by its key


def produce_when_room(
    producer: Producer, topic: str, value: bytes, key: bytes | None, partition: int = ANY_PARTITION
) -> None:
    """Hand a record to the producer, waiting while its queue is full (it is sending)."""
    while True:
        try:
            producer.produce(topic, value, key, partition)
            return
        except BufferError:
            producer.poll(0.1)


LEAVE_SECONDS = 10.0


def leave_group(consumer: Consumer, seconds: float = LEAVE_SECONDS) -> None:
    """Unsubscribe, and serve the revocation of every partition (its `on_revoke`) until none
    is assigned, for at most `seconds`: then `close` has no rebalance left to run. librdkafka
    can hang for good in `close` when a rebalance callback comes during it, holding the GIL
    (no thread of the process runs again). Messages still handed out meanwhile are dropped:
    they are not committed, and the partition's next owner reads them."""
    try:
        consumer.unsubscribe()
        deadline = time.monotonic() + seconds
        while consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.1)
    except (KafkaException, RuntimeError):
        pass  # `close` says what is wrong with the consumer, if anything
