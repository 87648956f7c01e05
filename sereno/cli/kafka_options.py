"""The options of the commands that talk to Kafka (`sereno serve --kafka`, `sereno worker`)."""

from __future__ import annotations

import argparse

from sereno.kafka.settings import (
    DEFAULT_ALERTS_TOPIC,
    DEFAULT_EVENTS_TOPIC,
    DEFAULT_PARTITIONS,
    DEFAULT_REPLICATION,
    DEFAULT_STATE_TOPIC,
    KafkaSettings,
    TopicCreation,
    Topics,
    check_bootstrap,
    check_topic,
    read_client_config,
)


def _count(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10000, got {text!r}")
    return int(text)


def add_kafka_options(parser: argparse.ArgumentParser, required: bool) -> None:
    kafka = parser.add_argument_group("Kafka (see README, Scaling out)")
    kafka.add_argument(
        "--kafka",
        metavar="BOOTSTRAP",
        required=required,
        help="the Kafka cluster's bootstrap servers, HOST:PORT[,HOST:PORT...]"
        + ("" if required else ": produce accepted events there instead of evaluating them"),
    )
    kafka.add_argument(
        "--kafka-config",
        metavar="FILE",
        help="librdkafka settings, key=value a line: security.protocol, sasl.*, ssl.*...",
    )
    for name, default, what in (
        ("events", DEFAULT_EVENTS_TOPIC, "the events, keyed by service"),
        ("alerts", DEFAULT_ALERTS_TOPIC, "the alert changes and their notices"),
        ("state", DEFAULT_STATE_TOPIC, "the workers' state, compacted"),
    ):
        kafka.add_argument(
            f"--{name}-topic", metavar="NAME", default=default, help=f"{what} (default {default})"
        )
    kafka.add_argument(
        "--create-topics",
        action="store_true",
        help="create the topics that are missing, with --partitions and --replication",
    )
    kafka.add_argument(
        "--partitions",
        metavar="N",
        type=_count,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of each topic created (default {DEFAULT_PARTITIONS})",
    )
    kafka.add_argument(
        "--replication",
        metavar="N",
        type=_count,
        default=DEFAULT_REPLICATION,
        help=f"replication factor of each topic created (default {DEFAULT_REPLICATION})",
    )


def kafka_settings(args: argparse.Namespace) -> KafkaSettings | None:
    """The Kafka settings the options give, checked; None without --kafka."""
    if args.kafka is None:
        return None
    client = read_client_config(args.kafka_config) if args.kafka_config is not None else {}
    topics = Topics(
        check_topic("--events-topic", args.events_topic),
        check_topic("--alerts-topic", args.alerts_topic),
        check_topic("--state-topic", args.state_topic),
    )
    create = TopicCreation(args.partitions, args.replication) if args.create_topics else None
    return KafkaSettings(check_bootstrap(args.kafka), client, topics, create)
