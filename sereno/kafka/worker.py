"""`sereno worker`'s evaluation: a consumer in the workers' group evaluates the events
partitions it is given, and writes, in one Kafka transaction, the alert changes and the
notices they call for (alerts topic), the state of its partitions (state topic) and the
offsets that state covers (the group's offsets).

Within a transaction the alerts are acknowledged by the brokers before the state that says
they were made is written, so that even a cluster that shows the records of an unfinished
transaction (librdkafka's mock cluster does) can only repeat an alert change, never lose one;
a change made twice has the same key, and the delivery stage tells it once.

On assignment, a partition's state is read back from the state topic (its last record) and
the partition is read again from where that state says; on revocation, its state is saved
and committed first. Partitions lost (this worker was too slow to answer the group, and
another owns them now) are dropped with what was not committed: the new owner makes it again.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka import KafkaError as ClientError

from sereno.engine.lifecycle import Episode
from sereno.events.body import BodyError, decode_body
from sereno.events.schema import Event, event_type
from sereno.events.times import EventTimes
from sereno.kafka.messages import STATE_DECODER, PartitionState
from sereno.kafka.partitions import PartitionWork, Record, alert_records, state_key
from sereno.kafka.settings import KafkaError, KafkaSettings, Topics
from sereno.kafka.topics import leave_group, prepare_topics, produce_when_room
from sereno.live.core import MAX_REPORTED, LiveCore, Step
from sereno.notify.config import NotifyConfig
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import RuleSet
from sereno.stderr import to_stderr
from sereno.text import counted

CONSUME_BATCH = 2000  # messages taken at a time
POLL_SECONDS = 0.1  # the longest a worker waits for messages before it ticks
COMMIT_SECONDS = 0.2  # the longest an alert change waits to be committed
TRANSACTION_TIMEOUT_MS = 10_000  # how long a dead worker's transaction can hold readers up
KAFKA_TIMEOUT = 30.0  # for a call to the cluster that must finish before going on
RETRY_MAX_SECONDS = 5.0  # the longest wait between two attempts to commit
STATE_LOOK_BACK = 16  # records before the end of a state partition in which its last state is
MAX_MESSAGE_BYTES = 16 << 20
EVENTS_TYPE = "application/x-ndjson"


@dataclass
class WorkerStats:
    """What the worker has done, for its log line at stop."""

    messages: int = 0
    events: int = 0
    bad_messages: int = 0  # not decodable at all
    rejected: int = 0  # records of messages that were refused
    transactions: int = 0


@dataclass
class _Pending:
    """What a partition has to write in the next transaction."""

    alerts: list[Record] = field(default_factory=list)
    state: Record | None = None
    changes: list[Episode] = field(default_factory=list)


class EvaluationWorker:
    """Evaluates the events partitions the group gives it, until `stop` is called."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        ruleset: RuleSet,
        notify: NotifyConfig | None,
        allowed_lateness: float,
        max_skew: float,
        on_change: Callable[[Episode], None],
        log: Callable[[str], None] = to_stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings, self._group = settings, group
        self._topics = settings.topics
        self._ruleset, self._notify = ruleset, notify
        self._allowed_lateness, self._max_skew = allowed_lateness, max_skew
        self._on_change, self._log, self._clock = on_change, log, clock
        self._event_type = event_type(ruleset.fields)
        self.stats = WorkerStats()
        self._owned: dict[int, PartitionWork] = {}
        self._pending: dict[int, _Pending] = {}
        self._committed_at = float("-inf")
        self._stopping = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    # --- the shell: start, the loop, stop ---------------------------------------------------

    def start(self) -> None:
        """Check the topics and join the group (raises `KafkaError` with why, if it cannot)."""
        topics = self._topics
        counts = prepare_topics(self._settings, [topics.events, topics.alerts, topics.state])
        if counts[topics.state] < counts[topics.events]:
            raise KafkaError(
                f"the state topic {topics.state!r} has {counts[topics.state]} partitions, "
                f"fewer than the {counts[topics.events]} of the events topic {topics.events!r}: "
                "each events partition keeps its state in the state partition of its number"
            )
        identity = (
            f"sereno-{self._group}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self._producer = producer = Producer(
            self._settings.producer_config(
                **{
                    "transactional.id": identity,
                    "transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS),
                    "linger.ms": "5",
                }
            )
        )
        _in_time(lambda: producer.init_transactions(KAFKA_TIMEOUT), "start a transaction")
        self._consumer = consumer = Consumer(
            self._settings.consumer_config(
                self._group,
                **{"auto.offset.reset": "earliest"},
            )
        )
        consumer.subscribe(
            [topics.events],
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._lost,
        )

    def run_until(self, stopping: Callable[[], bool]) -> None:
        """Take, evaluate and commit until `stopping()` says so; then hand the partitions
        back, with their state saved."""
        consumer = self._consumer
        assert consumer is not None
        while not stopping():
            messages = consumer.consume(CONSUME_BATCH, POLL_SECONDS)
            now = self._clock()
            self._take(messages, now)
            for work in list(self._owned.values()):
                self._collect(work, work.core.tick(now))
            if self._pending and now - self._committed_at >= COMMIT_SECONDS:
                self._commit()
        self._stopping = True
        leave_group(consumer)  # revokes every partition: each is saved and committed first
        consumer.close()
        self._log(
            f"sereno: worker stopped after {self.stats.messages} messages "
            f"({self.stats.events} events), {self.stats.transactions} transactions"
        )

    # --- taking messages ---------------------------------------------------------------------

    def _take(self, messages: Sequence[Message], now: float) -> None:
        """Each partition's run of messages, taken at once."""
        runs: dict[int, tuple[list[int], list[Event]]] = {}
        times = EventTimes(time.time(), self._max_skew, float("-inf"))
        for message in messages:
            error = message.error()
            if error is not None:
                self._client_error(error)
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or partition not in self._owned:
                continue
            offsets, events = runs.setdefault(partition, ([], []))
            work = self._owned[partition]
            if offsets and (offset + 1 > work.covered) != (offsets[-1] + 1 > work.covered):
                self._collect(work, work.take(offsets, events, now))  # replayed, then new
                offsets, events = runs[partition] = ([], [])
            offsets.append(offset)
            events += self._events_of(message, partition, offset, times)
        for partition, (offsets, events) in runs.items():
            if offsets:
                work = self._owned[partition]
                self._collect(work, work.take(offsets, events, now))

    def _events_of(
        self, message: Message, partition: int, offset: int, times: EventTimes
    ) -> list[Event]:
        """The events of a message, checked: a record that is not an event, or not of the
        service the message's key names, is refused and said (the first few)."""
        self.stats.messages += 1
        where = f"{self._topics.events} partition {partition} offset {offset}"
        try:
            decoded = decode_body(
                message.value() or b"",
                EVENTS_TYPE,
                None,
                self._event_type,
                MAX_MESSAGE_BYTES,
                times,
            )
        except BodyError as error:
            self.stats.bad_messages += 1
            self._say(self.stats.bad_messages, f"sereno: refused the message of {where}: {error}")
            return []
        key = (message.key() or b"").decode("utf-8", "replace")
        events = [event for event in decoded.events if event.service == key]
        refused = [
            f"record {r.index + 1}: {r.field or 'record'}: {r.reason}" for r in decoded.rejected
        ]
        refused += [
            f"service {event.service!r} is not the message's key {key!r}"
            for event in decoded.events
            if event.service != key
        ]
        for reason in refused:
            self.stats.rejected += 1
            self._say(self.stats.rejected, f"sereno: refused an event of {where}: {reason}")
        self.stats.events += len(events)
        return events

    def _say(self, count: int, line: str) -> None:
        if count <= MAX_REPORTED:
            self._log(line)

    def _client_error(self, error: ClientError) -> None:
        if error.fatal():
            raise KafkaError(f"Kafka: {error.str()}")
        self._log(f"sereno: Kafka: {error.str()}")

    # --- committing ----------------------------------------------------------------------------

    def _collect(self, work: PartitionWork, step: Step) -> None:
        """Log what the step says; keep what its checkpoint writes for the next transaction."""
        for line in step.told:
            self._log(line)
        checkpoint = step.checkpoint
        if checkpoint is None:
            return
        pending = self._pending.setdefault(work.partition, _Pending())
        pending.alerts += alert_records(checkpoint)
        pending.state = work.state_record(
            checkpoint, state_key(self._group, self._topics.events, work.partition)
        )
        pending.changes += checkpoint.changes

    def _commit(self) -> None:
        """Write what waits, with the offsets it covers, in one transaction; then log the
        changes committed. While the cluster cannot take it, it is tried again (said once):
        evaluation waits for Kafka rather than go on without saving."""
        pending, self._pending = self._pending, {}
        failures = 0
        while True:
            try:
                self._transaction(pending)
                break
            except KafkaException as error:
                failures += 1
                self._recover(error.args[0], failures)
        if failures:
            self._log(f"sereno: committed again, after {counted(failures, 'failed attempt')}")
        self.stats.transactions += 1
        self._committed_at = self._clock()
        for waiting in pending.values():
            for episode in waiting.changes:
                self._on_change(episode)

    def _transaction(self, pending: dict[int, _Pending]) -> None:
        """The alert records, acknowledged before the state records that say they were made,
        and the offsets, in one transaction."""
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        offsets = [
            TopicPartition(self._topics.events, p, work.next_offset)
            for p, work in self._owned.items()
            if work.next_offset is not None
        ]
        producer.begin_transaction()
        for waiting in pending.values():
            for key, value in waiting.alerts:
                produce_when_room(producer, self._topics.alerts, value, key)
        if producer.flush(KAFKA_TIMEOUT) > 0:
            raise KafkaException(ClientError(ClientError._TIMED_OUT, "alerts not acknowledged"))
        for partition, waiting in pending.items():
            if waiting.state is not None:
                key, value = waiting.state
                produce_when_room(producer, self._topics.state, value, key, partition)
        metadata = consumer.consumer_group_metadata()
        producer.send_offsets_to_transaction(offsets, metadata, KAFKA_TIMEOUT)
        producer.commit_transaction(KAFKA_TIMEOUT)

    def _recover(self, error: ClientError, failures: int) -> None:
        """After a failed transaction: abort it if it may be aborted, and wait a little; a
        fatal error (another took this worker's place: fenced) stops the worker."""
        if error.fatal():
            raise KafkaError(f"Kafka: {error.str()}")
        if failures == 1:
            self._log(f"sereno: cannot commit to Kafka: {error.str()}; trying again")
        producer = self._producer
        assert producer is not None
        with suppress(KafkaException):  # none may be in progress
            producer.abort_transaction(KAFKA_TIMEOUT)
        time.sleep(min(RETRY_MAX_SECONDS, 0.1 * 2**failures))

    # --- partitions coming and going ---------------------------------------------------------

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        states = saved_states(self._settings, self._group, numbers, self._log)
        placed = []
        for number in numbers:
            work = PartitionWork(number, self._new_core(), states.get(number), self._log)
            self._owned[number] = work
            offset = work.resume_at if work.resume_at is not None else OFFSET_STORED
            placed.append(TopicPartition(self._topics.events, number, offset))
        consumer.incremental_assign(placed)
        self._note("assigned", numbers)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions if tp.partition in self._owned]
        now = self._clock()
        for number in numbers:
            work = self._owned[number]
            self._collect(work, work.core.save(now))
        if self._pending:
            self._commit()
        for number in numbers:
            del self._owned[number]
        consumer.incremental_unassign(partitions)
        self._note("revoked", numbers)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        for number in numbers:
            self._owned.pop(number, None)
            self._pending.pop(number, None)
        consumer.incremental_unassign(partitions)
        self._note("lost", numbers)

    def _note(self, what: str, numbers: list[int]) -> None:
        if numbers:
            listed = ", ".join(str(n) for n in sorted(numbers))
            self._log(f"sereno: partitions {what}: {listed}")

    def _new_core(self) -> LiveCore:
        planner = Planner(self._notify, self._ruleset) if self._notify is not None else None
        return LiveCore(
            self._ruleset,
            self._allowed_lateness,
            self._clock(),
            COMMIT_SECONDS,
            planner,
            self._max_skew,
        )


OFFSET_STORED = -1000  # librdkafka: the group's committed offset


def saved_states(
    settings: KafkaSettings, group: str, numbers: list[int], log: Callable[[str], None]
) -> dict[int, PartitionState]:
    """The last saved state of each events partition of `numbers` that has one: in the last
    few records of its state partition, or, if they have none (a run of aborted
    transactions), anywhere in it. All the partitions are read at once."""
    if not numbers:
        return {}
    reader = Consumer(
        settings.consumer_config(
            f"{group}-restore", **{"enable.partition.eof": "true", "fetch.wait.max.ms": "10"}
        )
    )
    topics, found = settings.topics, {}
    try:
        ends = {
            number: reader.get_watermark_offsets(
                TopicPartition(topics.state, number), KAFKA_TIMEOUT
            )
            for number in numbers
        }
        near_end = {n: max(low, high - STATE_LOOK_BACK) for n, (low, high) in ends.items()}
        found = _last_values(reader, group, topics, near_end)
        elsewhere = {n: low for n, (low, _) in ends.items() if n not in found}
        if any(near_end[n] > low for n, low in elsewhere.items()):
            found |= _last_values(reader, group, topics, elsewhere)
    finally:
        reader.close()
    states = {number: _decoded_state(value, number, log) for number, value in found.items()}
    return {number: state for number, state in states.items() if state is not None}


def _last_values(
    reader: Consumer, group: str, topics: Topics, starts: dict[int, int]
) -> dict[int, bytes]:
    """The value of each partition's last state record from its offset in `starts` on."""
    topic, events = topics.state, topics.events
    keys = {state_key(group, events, number): number for number in starts}
    reader.assign([TopicPartition(topic, number, start) for number, start in starts.items()])
    values: dict[int, bytes] = {}
    left, deadline = set(starts), time.monotonic() + KAFKA_TIMEOUT
    while left and time.monotonic() < deadline:
        message = reader.poll(0.2)
        if message is None:
            continue
        error, number = message.error(), message.partition() or 0
        if error is not None:
            if error.code() == ClientError._PARTITION_EOF:
                left.discard(number)
        elif keys.get(message.key() or b"") == number:
            values[number] = message.value() or b""
    reader.unassign()
    if left:
        raise KafkaError(f"cannot read the state topic {topic} in time: partitions {sorted(left)}")
    return values


def _decoded_state(value: bytes, number: int, log: Callable[[str], None]) -> PartitionState | None:
    try:
        return STATE_DECODER.decode(value)
    except Exception as error:  # a state this version cannot read: start afresh, said
        log(
            f"sereno: the saved state of partition {number} cannot be read ({error}); "
            "it starts afresh from the group's committed offset"
        )
        return None


def _in_time(call: Callable[[], object], what: str) -> None:
    """Call; a failure of the cluster is a `KafkaError` saying what could not be done."""
    try:
        call()
    except KafkaException as error:
        raise KafkaError(f"cannot {what}: {error.args[0].str()}") from None
