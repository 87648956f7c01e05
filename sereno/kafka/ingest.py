"""An ingest node's producer (`sereno serve --kafka`): the events of each request to the
events topic, and the request answered only once the brokers have every message of it.

The HTTP event loop never waits on Kafka: it hands each message to librdkafka (which only
queues it), and awaits a future of the request's own; one thread polls the producer, whose
delivery reports count the request's messages down and settle that future on the loop.

A message not acknowledged within `DELIVERY_TIMEOUT_SECONDS` fails its request (503): the
client sends it again, so nothing answered 202 is lost, though a message that failed late
may be on the topic twice (a worker's evaluation takes an event twice as the service takes a
duplicate: see README, Scaling out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass

import msgspec
from confluent_kafka import KafkaError as ClientError
from confluent_kafka import KafkaException, Message, Producer
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sereno.events.body import BodyError
from sereno.events.schema import Event
from sereno.kafka.messages import event_messages
from sereno.kafka.settings import KafkaError, KafkaSettings
from sereno.stderr import to_stderr

# librdkafka gives up on a message this long after it was produced: a broker down shows as
# 503s within it, rather than as requests that hang for the default 5 minutes
DELIVERY_TIMEOUT_SECONDS = 5
RETRY_AFTER_SECONDS = 5  # what a 503's Retry-After says
FLUSH_SECONDS = 10.0  # at stop, for the messages still in flight
POLL_SECONDS = 0.1
# under librdkafka's default message.max.bytes (1,000,000) and brokers' max.message.bytes
# (1 MiB): a service's events over it go in several messages, split between lines
MAX_MESSAGE_BYTES = 900_000
# the rest of a request's events are encoded off the event loop, as the journal is
OFF_LOOP_EVENTS = 8000
# Throughput, which a --kafka-config file may change: a request waits for its messages
# anyway, so 5 ms of batching costs little and lets the requests of that time share one
# produce request a partition; lz4 takes JSON to about a fifth at little CPU (librdkafka's)
TUNING = {
    "linger.ms": "5",
    "batch.size": "1000000",
    "compression.type": "lz4",
    "log_level": "0",  # errors come through `error_cb`, a line each change (not each retry)
}
FIXED = {"message.timeout.ms": str(DELIVERY_TIMEOUT_SECONDS * 1000)}
QUIET_ADMIN = {"log_level": "0"}  # the start's check: its failure is the one line said


@dataclass
class ProduceStats:
    """What the producer did since the start (each field written by one thread only)."""

    events_produced: int = 0  # in messages the brokers acknowledged
    messages_produced: int = 0
    messages_failed: int = 0  # not acknowledged in time, or refused by the brokers
    messages_refused: int = 0  # not even queued: the producer's queue full, a bad message


class KafkaIngest:
    """The `Intake` of an ingest node (`sereno.serve.ingest`): events to the events topic,
    one message a service (key: the service's name), kept once the brokers acknowledge it."""

    refused_as = "kafka_unavailable"  # the `reason` label of sereno_events_rejected
    retry_after = RETRY_AFTER_SECONDS
    late_before = float("-inf")  # evaluation, and its lateness, are the workers'

    def __init__(
        self,
        settings: KafkaSettings,
        event_type: type[Event] = Event,
        on_fatal: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """`event_type`: what bodies decode into (the rules' extra fields kept);
        `on_fatal`: called (from the polling thread) if the producer can no longer be used."""
        self.event_type = event_type
        self.stats = ProduceStats()
        self._topic = settings.topics.events
        self._on_fatal = on_fatal
        self._producer = _producer(settings, self._on_error)
        self._told: set[int] = set()  # the errors told of since a delivery last succeeded
        self._stopping = threading.Event()
        self._polling = threading.Thread(target=self._poll, name="kafka-producer", daemon=True)
        self._in_order = asyncio.Lock()  # a service's messages go out in the order they came

    @property
    def running(self) -> bool:
        return self._polling.is_alive() and not self._stopping.is_set()

    def start(self) -> None:
        self._polling.start()

    def stop(self, timeout: float = FLUSH_SECONDS) -> int:
        """Stop polling and deliver what is in flight, for `timeout` at the most; how many
        messages are left undelivered (their requests were answered 503, or are being)."""
        self._stopping.set()
        if self._polling.is_alive():
            self._polling.join()
        return self._producer.flush(timeout)

    async def take(self, events: list[Event]) -> str | None:
        """Produce the events; None once every message of them is acknowledged, or why not."""
        loop = asyncio.get_running_loop()
        async with self._in_order:
            if len(events) > OFF_LOOP_EVENTS:
                messages = await asyncio.to_thread(encoded, events)
            else:
                messages = encoded(events)
            request = _Request(loop, len(messages), self.stats, self._delivered)
            refused = self._produce(messages, request)
        if refused is not None:
            return f"Kafka did not take the events: {refused}"
        reason = await request.settled
        return None if reason is None else f"Kafka did not take the events: {reason}"

    def _produce(self, messages: list[tuple[bytes, bytes, int]], request: _Request) -> str | None:
        """Queue each message; why not, if one cannot be (those before it may go out)."""
        for queued, (key, value, count) in enumerate(messages):
            try:
                self._producer.produce(self._topic, value, key, on_delivery=request.reporter(count))
            except (BufferError, KafkaException) as error:
                self.stats.messages_refused += len(messages) - queued
                if isinstance(error, BufferError):
                    return "the producer's queue is full: send again shortly"
                return _text(error)
        return None

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(POLL_SECONDS)

    def _delivered(self) -> None:
        """A message was acknowledged: an error from now on is news again."""
        self._told.clear()

    def _on_error(self, error: ClientError) -> None:
        """librdkafka's errors, a line for each kind of them till a delivery succeeds again
        (it says the same at every retry)."""
        if error.fatal():
            reason = error.str()
            to_stderr(f"sereno: Kafka: the producer failed for good: {reason}")
            self._on_fatal(reason)
        elif error.code() not in self._told:
            self._told.add(error.code())
            to_stderr(f"sereno: Kafka: {error.str()}")

    def collector(self) -> Collector:
        """The producer's counts, for the service's metrics."""
        return _ProduceCollector(self.stats, lambda: len(self._producer))


class _Request:
    """One request's messages: their delivery reports (in the polling thread) count them
    down; the last one, or the first failure's reason, settles `settled` on the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        messages: int,
        stats: ProduceStats,
        on_success: Callable[[], None],
    ) -> None:
        self._loop = loop
        self.settled: asyncio.Future[str | None] = loop.create_future()
        self._remaining = messages
        self._reason: str | None = None
        self._stats = stats
        self._on_success = on_success

    def reporter(self, events: int) -> Callable[[ClientError | None, Message], None]:
        def report(error: ClientError | None, message: Message) -> None:
            if error is None:
                self._stats.messages_produced += 1
                self._stats.events_produced += events
                self._on_success()
            else:
                self._stats.messages_failed += 1
                if self._reason is None:
                    self._reason = error.str()
            self._remaining -= 1
            if self._remaining == 0 or error is not None:
                self._settle_on_loop(self._reason)

        return report

    def _settle_on_loop(self, reason: str | None) -> None:
        with suppress(RuntimeError):  # the loop is closed: the server stopped meanwhile
            self._loop.call_soon_threadsafe(self._settle, reason)

    def _settle(self, reason: str | None) -> None:
        if not self.settled.done():
            self.settled.set_result(reason)


def encoded(events: list[Event]) -> list[tuple[bytes, bytes, int]]:
    """The messages of `events`: (key, value, how many events), each under
    `MAX_MESSAGE_BYTES`; a `BodyError` for events that cannot be messages."""
    _check_storable(events)
    return [
        (key, value, value.count(b"\n") + 1)
        for service, whole in event_messages(events)
        for key, value in split_message(service, whole, MAX_MESSAGE_BYTES)
    ]


def _check_storable(events: list[Event]) -> None:
    """An extra field the rules read must fit in 64 bits, as the workers' state keeps it
    (MessagePack), and as `sereno serve` refuses it when its journal cannot."""
    if type(events[0]) is Event:
        return  # no extra fields: every number of an event is checked when decoded
    try:
        msgspec.msgpack.encode(events)
    except OverflowError as error:
        raise BodyError(400, f"cannot store the events: {error}") from None


def split_message(key: bytes, value: bytes, limit: int) -> list[tuple[bytes, bytes]]:
    """A message of JSON Lines as messages of the same key, each of at most `limit` bytes,
    cut between lines, in order; a line over `limit` is a `BodyError` (413)."""
    if len(value) <= limit:
        return [(key, value)]
    parts: list[tuple[bytes, bytes]] = []
    lines: list[bytes] = []
    size = 0
    for line in value.split(b"\n"):
        if len(line) > limit:
            raise BodyError(
                413,
                f"an event of service {key.decode(errors='replace')[:60]!r} is "
                f"{len(line)} bytes as JSON, over the {limit} a Kafka message may hold",
            )
        if lines and size + 1 + len(line) > limit:
            parts.append((key, b"\n".join(lines)))
            lines, size = [], 0
        size += len(line) + (1 if lines else 0)  # and the newline before it
        lines.append(line)
    parts.append((key, b"\n".join(lines)))
    return parts


def _producer(settings: KafkaSettings, on_error: Callable[[ClientError], None]) -> Producer:
    tuning = {key: value for key, value in TUNING.items() if key not in settings.client}
    config = settings.producer_config(**tuning, **FIXED)
    try:
        return Producer(config, error_cb=on_error)
    except KafkaException as error:
        raise KafkaError(f"the Kafka client settings are refused: {_text(error)}") from None


def quiet(settings: KafkaSettings) -> KafkaSettings:
    """The settings for a check at start, whose client logs nothing: its failure is the
    one line of the error it raises (unless the file sets a log level of its own)."""
    extra = {key: value for key, value in QUIET_ADMIN.items() if key not in settings.client}
    return dataclasses.replace(settings, client={**settings.client, **extra})


def _text(error: KafkaException) -> str:
    first = error.args[0] if error.args else error
    return first.str() if isinstance(first, ClientError) else str(first)


class _ProduceCollector(Collector):
    def __init__(self, stats: ProduceStats, in_flight: Callable[[], int]) -> None:
        self._stats = stats
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield CounterMetricFamily(
            "sereno_kafka_events_produced",
            "Events in messages the Kafka brokers acknowledged",
            value=stats.events_produced,
        )
        yield CounterMetricFamily(
            "sereno_kafka_messages_produced",
            "Messages the Kafka brokers acknowledged",
            value=stats.messages_produced,
        )
        failures = CounterMetricFamily(
            "sereno_kafka_produce_failures",
            "Messages Kafka did not take: not acknowledged in time or refused by the brokers "
            "(delivery), or not even queued by the producer (queue)",
            labels=["stage"],
        )
        failures.add_metric(["delivery"], stats.messages_failed)
        failures.add_metric(["queue"], stats.messages_refused)
        yield failures
        yield GaugeMetricFamily(
            "sereno_kafka_messages_in_flight",
            "Messages produced and not yet acknowledged nor failed",
            value=self._in_flight(),
        )
