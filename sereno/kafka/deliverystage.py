"""The delivery stage of `sereno worker`: the alerts topic's notices, told to the receivers.

Every worker runs one, in the consumer group `<group>-delivery` of the alerts topic (offsets
committed by the stage, reading only what committed transactions wrote, cooperative-sticky
rebalancing). The notices of each record (its `Addressed` items, for receivers the config has)
are queued in the outbox of the worker's state file (`--db`), where the `Delivery` workers of
`sereno serve` send them: in order per alert, retried with backoff, given up after
`give_up_after`, dropped on a 4xx answer, every attempt logged.

**At least once.** A partition's offset is committed only up to the first record that still
has a notice in the outbox (neither delivered nor given up on), so whatever a worker had not
delivered when it died is read again by the partition's next owner: nothing is lost.

**Deduplicated by idempotency key** (`Addressed.key`, the same wherever and however often the
notice is made), in two places:

- in the state file, for this worker: each key is recorded (`delivery_keys`, kept a week) in
  the transaction that queues its notice, and a notice whose key is recorded is not queued
  again. So a worker delivers once the same change produced twice: by the evaluation around
  a takeover of an events partition, in a record of an aborted transaction and again in the
  next owner's (the mock cluster does not hide aborted records from `read_committed`
  consumers; a real cluster does), or read again after a rebalance of the alerts group;
- across workers: when the stage is given an alerts partition, it reads back the records
  just before the group's committed offset (at most `LOOK_BACK_RECORDS`, for at most
  `LOOK_BACK_SECONDS`) and records their keys as handled, as they were (delivered or given
  up on) by the partition's previous owner: a copy of one of them that lands after the
  committed offset is not delivered twice.

A notice withdrawn from the outbox (below) has its key forgotten, so that it is queued again
when its record is read again.

**When a receiver may be told a notice twice**, with the same idempotency key (which the
webhook sends as its `Idempotency-Key` header, and by which Alertmanager merges repeats, so
that a receiver can tell):

- a worker stops (killed, or its partition taken away) after the receiver took a notice and
  before the commit that says so: the next owner reads that record again and tells it again.
  Commits follow deliveries within `COMMIT_EVERY_SECONDS`, and a partition taken away is
  committed first (below), so this is mostly about a worker that dies;
- a copy of a record older than the look-back (or of a key pruned after a week) arrives;
- a send still in flight after `REVOKE_WAIT_SECONDS` when its partition is taken away.

**Rebalances.** When an alerts partition is taken away, the stage waits (at most
`REVOKE_WAIT_SECONDS`) for the sends in flight of that partition's notices, and no send of
them starts from then on (the senders are wrapped: a notice withdrawn between a delivery
worker's reading the outbox and its sending is left out of the send); then it commits what
was delivered and withdraws the rest from the outbox, for the new owner to read again. A send
still in flight when the wait ends may reach the receiver after the withdrawal: then the new
owner tells it again (the window above). Such a send, or one left out as withdrawn, is logged
as sent in the deliveries log of this worker's state file. The leftovers of an earlier run of
the worker (its outbox, undelivered when it stopped) are withdrawn at start, for the same
reason. A partition the group has no offset for yet is read from its start.

**Alertmanager's refresh.** The worker's state file has no snapshot of what fires. The stage
keeps, per partition it owns, the latest notice of each alert for each receiver while its
status is firing (forgotten when a resolved one comes, or when the partition goes), taking
the records it reads and those it reads back; Alertmanager is refreshed with those
(`FiringSource`). An alert whose latest notice is older than the look-back is refreshed only
from its next notice on.

Every input is hostile: a record that is not an `AlertMessage` is logged (topic, partition,
offset; the first `LOGGED_BAD_RECORDS`, then only counted) and passed over; a notice for a
receiver the config does not have is counted and said once per receiver. Only a failure of
the state file (a full disk) stops the stage: its thread ends, with `failure` set.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka import KafkaError as ClientError

from sereno.kafka.messages import ALERT_MESSAGE, AlertMessage, delivered_message
from sereno.kafka.settings import KafkaError, KafkaSettings
from sereno.kafka.topics import leave_group, produce_when_room
from sereno.notify.config import NotifyConfig, ReceiverSpec
from sereno.notify.delivery import Delivery, notice_outbox
from sereno.notify.notice import FIRING, Notice
from sereno.notify.planner import Planner
from sereno.notify.service import senders_of
from sereno.notify.transport import Sender
from sereno.rules.rulefmt import RuleSet
from sereno.stderr import to_stderr
from sereno.text import counted

LOOK_BACK_RECORDS = 10_000  # records read back before a committed offset, on assignment
LOOK_BACK_SECONDS = 10.0  # at most, for all the partitions of one assignment
REVOKE_WAIT_SECONDS = 15.0  # for a partition's sends in flight: over a default timeout (10 s)
POLL_SECONDS = 0.2
COMMIT_EVERY_SECONDS = 0.25
PRUNE_EVERY_SECONDS = 3600.0
LOGGED_BAD_RECORDS = 10
LOGGED_CLIENT_ERRORS = 10
WITHDRAWN_KEPT_SECONDS = 60.0  # a withdrawn key is left out of sends this long at most
KAFKA_FLUSH_SECONDS = 10.0  # for the records of delivered keys, before a partition goes
SHOWN_CHARACTERS = 120  # of a name or an error from the topic, in a log line


@dataclass
class StageCounts:
    """What the stage did, for the metrics: written by its thread only."""

    records: int = 0  # records of the alerts topic read
    undecodable: int = 0  # of those, passed over: not an alert message
    queued: int = 0  # notices queued for delivery
    duplicates: int = 0  # notices not queued: their key was known
    unknown_receiver: int = 0  # notices not queued: for a receiver the config does not have
    withdrawn: int = 0  # notices taken back from the outbox undelivered (partition taken away)
    looked_back: int = 0  # keys recorded as handled, read back before a committed offset
    commits: int = 0  # offsets committed, a partition each


@dataclass
class _Partition:
    """An alerts partition the stage owns."""

    number: int
    next_offset: int | None = None  # after the latest record read
    committed: int | None = None  # as this stage last committed it
    # records with notices queued, oldest first: (offset, [(outbox id, sent key)])
    waiting: deque[tuple[int, list[tuple[int, str]]]] = field(default_factory=deque)
    firing: dict[tuple[str, str], Notice] = field(default_factory=dict)  # (receiver, alert)

    def note(self, receiver: str, notice: Notice) -> None:
        """Keep the latest firing notice of the alert for the receiver; forget it once not."""
        if notice.status == FIRING:
            self.firing[(receiver, notice.alert)] = notice
        else:
            self.firing.pop((receiver, notice.alert), None)


def sent_key(receiver: str, notice: Notice) -> str:
    """The key a notice is known by while it is being sent (as `messages.addressed` makes it)."""
    return f"{receiver}/{notice.key}"


class InFlight:
    """The notices being sent, by `sent_key`, and those withdrawn, which are not to be sent."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sending: Counter[str] = Counter()
        self._withdrawn: dict[str, float] = {}  # key: time.monotonic() when withdrawn

    def begin(self, keys: Sequence[str]) -> list[bool]:
        """Which of these may be sent (not withdrawn); those are in flight until `end`."""
        with self._changed:
            allowed = [key not in self._withdrawn for key in keys]
            self._sending.update(key for key, ok in zip(keys, allowed, strict=True) if ok)
            return allowed

    def end(self, keys: Iterable[str]) -> None:
        with self._changed:
            self._sending.subtract(keys)
            self._sending = +self._sending
            self._changed.notify_all()

    def withdraw(self, keys: Collection[str], timeout: float) -> bool:
        """No send of these starts from now on; wait (up to `timeout`) for those in flight to
        end: whether they all did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            now = time.monotonic()
            self._withdrawn = {
                key: at for key, at in self._withdrawn.items() if at > now - WITHDRAWN_KEPT_SECONDS
            }
            self._withdrawn.update(dict.fromkeys(keys, now))
            return self._changed.wait_for(
                lambda: not any(key in self._sending for key in keys),
                max(0.0, deadline - time.monotonic()),
            )

    def allow(self, keys: Iterable[str]) -> None:
        """Queued again: these may be sent."""
        with self._changed:
            for key in keys:
                self._withdrawn.pop(key, None)


class TrackedSender:
    """A receiver's sender, whose sends are known to `InFlight`: one leaves out the notices
    withdrawn since the delivery worker read them from the outbox."""

    def __init__(
        self,
        receiver: str,
        sender: Sender,
        in_flight: InFlight,
        on_sent: Callable[[list[str]], None],
    ) -> None:
        self.batch_size = sender.batch_size
        self._receiver = receiver
        self._sender = sender
        self._in_flight = in_flight
        self._on_sent = on_sent  # told the keys its receiver took

    def send(self, notices: Sequence[Notice]) -> None:
        keys = [sent_key(self._receiver, notice) for notice in notices]
        allowed = self._in_flight.begin(keys)
        try:
            kept = [notice for notice, ok in zip(notices, allowed, strict=True) if ok]
            if kept:
                self._sender.send(kept)
                self._on_sent([key for key, ok in zip(keys, allowed, strict=True) if ok])
        finally:
            self._in_flight.end(key for key, ok in zip(keys, allowed, strict=True) if ok)

    def close(self) -> None:
        self._sender.close()


class DeliveryStage:
    """Reads the alerts topic in `<group>-delivery` and delivers its notices through the
    outbox of the state file `db` (made by `state.store.create`), to the receivers of
    `config`. `start()`, then `stop()`; `failure` is set if its thread ended on an error."""

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        db: str | Path,
        config: NotifyConfig,
        ruleset: RuleSet,
        log: Callable[[str], None] = to_stderr,
    ) -> None:
        self.topic = settings.topics.alerts
        self.group = f"{group}-delivery"
        self.log = log
        self.counts = StageCounts()
        self.failure: BaseException | None = None
        # a partition the group has no offset for yet is read from its start: the first
        # evaluation workers may write notices before any delivery stage joined
        self._consumer_config = settings.consumer_config(
            self.group,
            **{"auto.offset.reset": "earliest"},
        )
        # reads back before committed offsets; never joins the group nor commits
        self._reader_config = settings.consumer_config(
            self.group, **{"enable.partition.eof": "true", "auto.offset.reset": "earliest"}
        )
        self._receivers = {spec.name for spec in config.receivers}
        self._outbox = notice_outbox(db)
        self._in_flight = InFlight()
        self.delivery = Delivery(
            self._outbox,
            config.receivers,
            self._senders(config),
            Planner(config, ruleset),
            log=log,
            firing=self,
        )
        self._lock = threading.Lock()  # the partitions and the outbox's queue, vs refreshes
        self._partitions: dict[int, _Partition] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sereno-delivery", daemon=True)
        self._said_receivers: set[str] = set()
        self._client_errors = 0
        self._commit_failing = False
        self._committed_at = float("-inf")
        self._pruned_at = float("-inf")
        self._consumer: Consumer | None = None
        self._reader: Consumer | None = None
        self._producer: Producer | None = None  # of the records of delivered keys
        self._producer_config = settings.producer_config(**{"linger.ms": "5"})
        self._partition_of: dict[str, int] = {}  # a queued notice's key: its partition
        self._taken: set[str] = set()  # keys delivered while partitions are given back

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Withdraw what an earlier run left undelivered (its records were not committed: they
        are read again), join the group and start delivering."""
        leftovers = self._outbox.withdraw()
        if leftovers:
            self.log(
                f"sereno: delivery: withdrew {counted(leftovers, 'notification')} left "
                "undelivered by an earlier run; they are read again from the alerts topic"
            )
        try:
            self._consumer = Consumer(self._consumer_config)
            self._reader = Consumer(self._reader_config)
            self._producer = Producer(self._producer_config)
        except KafkaException as error:
            raise KafkaError(f"cannot make a Kafka consumer: {error.args[0]}") from None
        self.delivery.start()
        self._thread.start()

    def use(self, config: NotifyConfig, ruleset: RuleSet) -> None:
        """Deliver to the receivers of `config` from now on (after a reload): each delivery
        worker finishes what it is sending; what waits for a receiver no longer configured is
        dropped, and said so (its records are then committed)."""
        self._receivers = {spec.name for spec in config.receivers}
        self._said_receivers.clear()
        self.delivery.reconfigure(config.receivers, self._senders(config), Planner(config, ruleset))

    def _senders(self, config: NotifyConfig) -> dict[str, Sender]:
        return {
            name: TrackedSender(name, sender, self._in_flight, self._delivered)
            for name, sender in senders_of(config).items()
        }

    def _delivered(self, keys: list[str]) -> None:
        """Say on the alerts topic that these notices were delivered (in a delivery worker's
        thread, once their receiver took them): in the partitions of their records."""
        by_partition: dict[int, list[str]] = {}
        with self._lock:
            self._taken.update(keys)
            for key in keys:
                number = self._partition_of.get(key)
                if number is not None:
                    by_partition.setdefault(number, []).append(key)
        producer = self._producer
        for number, delivered in by_partition.items():
            if producer is not None:
                produce_when_room(producer, self.topic, delivered_message(delivered), None, number)

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the sends in flight, commit what was delivered, leave the group."""
        self._stopping.set()
        if self._thread.ident is None:  # never started
            self._outbox.close()
        elif self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def depths(self) -> dict[str, int]:
        return self.delivery.depths()

    def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            consumer.subscribe(
                [self.topic],
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._lost,
            )
            while not self._stopping.is_set():
                message = consumer.poll(POLL_SECONDS)
                if message is not None:
                    self._take(message)
                self._said_delivered(0)
                self._commit_if_due()
                self._prune_if_due()
            self._finish(consumer)
        except BaseException as error:  # the state file failed: said, and the thread ends
            self.failure = error
            self.log(f"sereno: delivery stopped: {error!r}")
            self.delivery.stop()
            self._close(consumer)

    def _said_delivered(self, timeout: float) -> None:
        """Serve the producer of delivered keys; with a `timeout`, wait until all it was given
        is written (before a partition is handed on)."""
        producer = self._producer
        if producer is None:
            return
        if timeout:
            left = producer.flush(timeout)
            if left:
                self.log(
                    f"sereno: delivery: {counted(left, 'record')} of delivered keys not written"
                )
        else:
            producer.poll(0)

    def _finish(self, consumer: Consumer) -> None:
        self.delivery.stop()  # waits for the sends in flight
        self._said_delivered(KAFKA_FLUSH_SECONDS)
        self._commit_delivered()
        self._give_back(list(self._partitions), commit=True)
        leave_group(consumer)
        self._close(consumer)

    def _close(self, consumer: Consumer) -> None:
        for client in (consumer, self._reader):
            try:
                if client is not None:
                    client.close()
            except (KafkaException, RuntimeError) as error:
                self.log(f"sereno: delivery: closing a Kafka consumer: {error}")
        self._producer = None  # its connections close with it
        self._outbox.close()

    # -- records ---------------------------------------------------------------------------------

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            self._client_error(str(error))
            return
        number, offset = message.partition(), message.offset()
        partition = self._partitions.get(number) if number is not None else None
        if partition is None or number is None or offset is None:
            return  # not (or no longer) ours
        partition.next_offset = offset + 1
        self.counts.records += 1
        try:
            record = ALERT_MESSAGE.decode(message.value() or b"")
        except msgspec.DecodeError as bad:
            self._bad_record(number, offset, bad)
            return
        if record.delivered:
            self.counts.looked_back += self._outbox.remember(record.delivered, time.time())
        self._queue(partition, offset, record)

    def _queue(self, partition: _Partition, offset: int, record: AlertMessage) -> None:
        wanted = []
        for item in record.notices:
            if item.receiver in self._receivers:
                wanted.append(item)
            else:
                self._unknown_receiver(item.receiver)
        with self._lock:
            ids = self._outbox.queue_once(
                [(item.key, item.receiver, item.notice) for item in wanted], time.time()
            )
            self._in_flight.allow(
                sent_key(item.receiver, item.notice)
                for item, id in zip(wanted, ids, strict=True)
                if id is not None
            )
            for item in wanted:
                partition.note(item.receiver, item.notice)
        queued = [
            (id, sent_key(item.receiver, item.notice))
            for item, id in zip(wanted, ids, strict=True)
            if id is not None
        ]
        self.counts.queued += len(queued)
        self.counts.duplicates += len(wanted) - len(queued)
        if queued:
            with self._lock:
                self._partition_of.update((key, partition.number) for _, key in queued)
            partition.waiting.append((offset, queued))
            self.delivery.wake()

    def _bad_record(self, number: int, offset: int, error: Exception) -> None:
        self.counts.undecodable += 1
        if self.counts.undecodable > LOGGED_BAD_RECORDS:
            return
        then = "; further ones are counted, not logged" * (
            self.counts.undecodable == LOGGED_BAD_RECORDS
        )
        self.log(
            f"sereno: delivery: passed over record {self.topic} [{number}] at offset {offset}: "
            f"not an alert message ({_shown(str(error))}){then}"
        )

    def _unknown_receiver(self, receiver: str) -> None:
        self.counts.unknown_receiver += 1
        if receiver in self._said_receivers or len(self._said_receivers) > 100:
            return
        self._said_receivers.add(receiver)
        self.log(
            f"sereno: delivery: notices for receiver {_shown(receiver)!r}, which the config "
            "does not have, are not delivered (counted)"
        )

    def _client_error(self, error: str) -> None:
        self._client_errors += 1
        if self._client_errors <= LOGGED_CLIENT_ERRORS:
            self.log(f"sereno: delivery: Kafka: {_shown(error)}")

    # -- offsets ---------------------------------------------------------------------------------

    def _commit_if_due(self) -> None:
        if time.monotonic() - self._committed_at >= COMMIT_EVERY_SECONDS:
            self._commit_delivered()
            self._committed_at = time.monotonic()

    def _commit_delivered(
        self, numbers: Iterable[int] | None = None, unsent: Collection[int] = ()
    ) -> None:
        """Commit each partition's offset up to its first record still with a notice queued,
        or `unsent` (all it read, if none)."""
        consumer = self._consumer
        assert consumer is not None
        still = self._outbox.queued_ids() | set(unsent)
        offsets = []
        for number in self._partitions if numbers is None else numbers:
            partition = self._partitions.get(number)
            if partition is None:
                continue
            waiting = partition.waiting
            while waiting and not any(id in still for id, _ in waiting[0][1]):
                _, drained = waiting.popleft()
                with self._lock:
                    for _, key in drained:
                        self._partition_of.pop(key, None)
            point = waiting[0][0] if waiting else partition.next_offset
            if point is not None and point != partition.committed:
                offsets.append(TopicPartition(self.topic, number, point))
        if not offsets:
            return
        try:
            answered = consumer.commit(offsets=offsets, asynchronous=False) or []
        except KafkaException as error:
            if not self._commit_failing:
                self.log(f"sereno: delivery: cannot commit offsets, will try again: {error}")
            self._commit_failing = True
            return
        self._commit_failing = False
        for done in answered:
            partition = self._partitions.get(done.partition)
            if done.error is None and partition is not None:
                partition.committed = done.offset
                self.counts.commits += 1

    def _prune_if_due(self) -> None:
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            self._outbox.prune_keys(now)

    # -- rebalances ------------------------------------------------------------------------------

    def _assigned(self, consumer: Consumer, given: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in given if tp.topic == self.topic]
        if not numbers:
            return
        seen = self._look_back(numbers)
        with self._lock:
            for number in numbers:
                self._partitions[number] = seen.get(number) or _Partition(number)

    def _revoked(self, consumer: Consumer, taken: list[TopicPartition]) -> None:
        self._give_back([tp.partition for tp in taken if tp.topic == self.topic], commit=True)

    def _lost(self, consumer: Consumer, taken: list[TopicPartition]) -> None:
        self._give_back([tp.partition for tp in taken if tp.topic == self.topic], commit=False)

    def _give_back(self, numbers: list[int], commit: bool) -> None:
        """Partitions taken away: wait (bounded) for their sends in flight, commit what was
        delivered (if still ours to commit) and withdraw the rest from the outbox."""
        ours = [self._partitions[number] for number in numbers if number in self._partitions]
        if not ours:
            return
        queued = [item for partition in ours for _, items in partition.waiting for item in items]
        # a notice withdrawn while a delivery worker holds it leaves the outbox as if sent:
        # only those its receiver took count as delivered in the commit
        with self._lock:
            unsent = self._outbox.queued_ids()
            self._taken.clear()
        if not self._in_flight.withdraw({key for _, key in queued}, REVOKE_WAIT_SECONDS):
            self.log(
                "sereno: delivery: a send was still in flight when its alerts partition was "
                "taken away; its receiver may be told it again, with the same idempotency key"
            )
        self._said_delivered(KAFKA_FLUSH_SECONDS)  # before the next owner reads ahead
        if commit:
            with self._lock:
                unsent = {id for id, key in queued if id in unsent and key not in self._taken}
            self._commit_delivered(numbers, unsent)
        with self._lock:
            self.counts.withdrawn += self._outbox.withdraw([id for id, _ in queued])
            for number in numbers:
                self._partitions.pop(number, None)
            for _, key in queued:
                self._partition_of.pop(key, None)

    def _look_back(self, numbers: list[int]) -> dict[int, _Partition]:
        """Read each partition from a little before the group's committed offset to its end
        (bounded), and record as handled the keys of the records before that offset, and
        those a delivery stage said it delivered; the firing notices, by partition."""
        reader = self._reader
        assert reader is not None
        try:
            asked = [TopicPartition(self.topic, number) for number in numbers]
            committed = {
                tp.partition: tp.offset
                for tp in reader.committed(asked, timeout=10)
                if tp.error is None and tp.offset >= 0
            }
        except KafkaException as error:
            self.log(f"sereno: delivery: cannot read the committed offsets to look back: {error}")
            return {}
        starts = {
            number: max(0, committed.get(number, 0) - LOOK_BACK_RECORDS) for number in numbers
        }
        reader.assign([TopicPartition(self.topic, n, start) for n, start in starts.items()])
        seen: dict[int, _Partition] = {}
        keys: list[str] = []
        left = set(numbers)
        deadline = time.monotonic() + LOOK_BACK_SECONDS
        try:
            while left and time.monotonic() < deadline:
                message = reader.poll(POLL_SECONDS)
                number = message.partition() if message is not None else None
                if message is None or number not in left:
                    continue
                failure = message.error()
                if failure is not None:
                    if failure.code() == ClientError._PARTITION_EOF:
                        left.discard(number)
                    continue
                before = (message.offset() or 0) < committed.get(number, 0)
                partition = seen.setdefault(number, _Partition(number))
                keys += self._handled(partition, message.value(), before)
        finally:
            reader.unassign()
        if left:
            self.log(
                f"sereno: delivery: looking back in partitions {sorted(left)} of {self.topic} "
                f"took over {LOOK_BACK_SECONDS:g}s; notices of older records may be delivered "
                "again if they come again"
            )
        self.counts.looked_back += self._outbox.remember(keys, time.time())
        return seen

    def _handled(self, partition: _Partition, value: bytes | None, before: bool) -> list[str]:
        """The keys a record read back shows handled: said delivered, or, `before` the
        committed offset, all of its notices (whose firing ones are kept for refreshes)."""
        try:
            record = ALERT_MESSAGE.decode(value or b"")
        except msgspec.DecodeError:
            return []  # said by whoever read it first
        if not before:
            return list(record.delivered)
        for item in record.notices:
            partition.note(item.receiver, item.notice)
        return [*record.delivered, *(item.key for item in record.notices)]

    # -- what fires, for Alertmanager ------------------------------------------------------------

    def firing_if_drained(self, spec: ReceiverSpec, held: Collection[str]) -> list[Notice] | None:
        with self._lock:
            if not self._outbox.drained(spec.name, held):
                return None
            return [
                notice
                for partition in self._partitions.values()
                for (receiver, _), notice in partition.firing.items()
                if receiver == spec.name
            ]


def _shown(text: str) -> str:
    """Text from the topic or the client in a log line: its first line, not too long."""
    lines = text.splitlines() or [""]
    line = lines[0]
    return line if len(line) <= SHOWN_CHARACTERS else line[:SHOWN_CHARACTERS] + "..."
