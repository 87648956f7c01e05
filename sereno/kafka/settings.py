"""Where the Kafka cluster is, how to reach it and which topics to use: checked at start.

The client settings of `--kafka-config FILE` (`key=value` lines: security protocol, SASL, TLS
files) go to librdkafka as they are, but for the ones Sereno's guarantees rest on, which it
sets itself and a file may not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sereno.errors import SerenoError

DEFAULT_EVENTS_TOPIC = "sereno-events"
DEFAULT_ALERTS_TOPIC = "sereno-alerts"
DEFAULT_STATE_TOPIC = "sereno-state"
DEFAULT_GROUP = "sereno-workers"
DEFAULT_PARTITIONS = 12
DEFAULT_REPLICATION = 3

# Set by Sereno: keys must land where Java clients put them, and nothing acknowledged may be
# lost or written twice by a producer's own retries.
FIXED_PRODUCER = {
    "enable.idempotence": "true",
    "acks": "all",
    "partitioner": "murmur2_random",
}
# Offsets are Sereno's to commit, with the state that covers them; a worker reads only what
# was committed by the producers of the topics it reads.
FIXED_CONSUMER = {
    "enable.auto.commit": "false",
    "isolation.level": "read_committed",
}
# For consumer groups, unless the config file says otherwise: a dead member's partitions move
# after 6 s (the brokers' least, `group.min.session.timeout.ms`), not after librdkafka's 45.
GROUP_DEFAULTS = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "1000",
    "partition.assignment.strategy": "cooperative-sticky",
}
SECRET_WORDS = ("password", "secret", "token", "key.pem", "sasl.jaas")
MAX_CONFIG_BYTES = 1 << 20
TOPIC_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


ClientConfig = dict[str, "str | int | float | bool"]  # as librdkafka's clients take it


class KafkaError(SerenoError):
    """The Kafka settings cannot be used, or the cluster cannot be reached or used."""


@dataclass(frozen=True)
class Topics:
    events: str = DEFAULT_EVENTS_TOPIC
    alerts: str = DEFAULT_ALERTS_TOPIC
    state: str = DEFAULT_STATE_TOPIC


@dataclass(frozen=True)
class TopicCreation:
    """Create the topics that are missing, with these counts (`--create-topics`)."""

    partitions: int = DEFAULT_PARTITIONS
    replication: int = DEFAULT_REPLICATION


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    client: Mapping[str, str] = field(default_factory=dict)  # from --kafka-config
    topics: Topics = Topics()
    create: TopicCreation | None = None

    def producer_config(self, **extra: str) -> ClientConfig:
        """A producer's settings: the file's, then `extra` (a transactional id, say), then
        those Sereno fixes."""
        return {**self._common(), **extra, **FIXED_PRODUCER}

    def consumer_config(self, group: str, **extra: str) -> ClientConfig:
        """A consumer's settings in `group`: the file's, then `extra`, then those Sereno fixes."""
        return {**GROUP_DEFAULTS, **self._common(), "group.id": group, **extra, **FIXED_CONSUMER}

    def admin_config(self) -> ClientConfig:
        return self._common()

    def _common(self) -> ClientConfig:
        return {**self.client, "bootstrap.servers": self.bootstrap}

    def describe(self) -> str:
        """How the settings read in a log line: secrets as <secret>."""
        shown = [f"{key}={shown_value(key, value)}" for key, value in sorted(self.client.items())]
        settings = f" ({', '.join(shown)})" if shown else ""
        return f"Kafka at {self.bootstrap}{settings}"


def shown_value(key: str, value: str) -> str:
    """A client setting's value as logs may show it."""
    return "<secret>" if any(word in key.lower() for word in SECRET_WORDS) else value


def check_bootstrap(text: str) -> str:
    """`--kafka`'s HOST:PORT[,HOST:PORT...], or why it is not one."""
    addresses = [address.strip() for address in text.split(",")]
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise KafkaError(
                f"--kafka {text!r}: expected HOST:PORT[,HOST:PORT...], such as "
                f"kafka1:9092,kafka2:9092"
            )
    return ",".join(addresses)


def check_topic(option: str, name: str) -> str:
    """A topic name Kafka takes: 1 to 249 of letters, digits, '.', '_' and '-'."""
    if not 0 < len(name) < 250 or not set(name) <= TOPIC_CHARACTERS or name in (".", ".."):
        raise KafkaError(
            f"{option} {name[:60]!r}: a topic name is 1 to 249 letters, digits, '.', '_' or '-'"
        )
    return name


def read_client_config(path: str) -> dict[str, str]:
    """The librdkafka settings of a `key=value` file; `#` starts a comment line. Any problem
    is named with the file and line."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise KafkaError(
            f"cannot read the Kafka config {path}: {error.strerror or error}"
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise KafkaError(f"the Kafka config {path} is over {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KafkaError(f"the Kafka config {path} is not valid UTF-8 text") from None
    return parse_client_config(text, Path(path).name)


def parse_client_config(text: str, source: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    fixed = {**FIXED_PRODUCER, **FIXED_CONSUMER, "bootstrap.servers": "", "group.id": ""}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, equals, value = stripped.partition("=")
        key, value = key.strip(), value.strip()
        where = f"{source}:{number}"
        if not equals or not key or not key.isprintable() or not value.isprintable():
            raise KafkaError(f"{where}: expected key=value, such as security.protocol=SASL_SSL")
        if key in fixed:
            raise KafkaError(f"{where}: {key} is set by sereno (see README, Scaling out)")
        if key in settings:
            raise KafkaError(f"{where}: {key} is set twice")
        settings[key] = value
    return settings
