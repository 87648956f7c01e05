"""`sereno worker`: parse its options and wire the evaluation of Kafka partitions."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from sereno.cli.kafka_options import add_kafka_options, kafka_settings
from sereno.cli.options import (
    DEFAULT_WORKER_DB,
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    add_clock_skew_option,
    add_lateness_option,
    add_rules_option,
    load_ruleset,
    open_for_append,
)
from sereno.cli.receivers import add_receiver_options, webhook_option
from sereno.kafka.deliverystage import DeliveryStage
from sereno.kafka.settings import DEFAULT_GROUP, KafkaError, KafkaSettings
from sereno.kafka.worker import EvaluationWorker
from sereno.notify.config import receivers_config
from sereno.sinks.alertslog import ChangeLog
from sereno.state.store import claim, create
from sereno.stderr import to_stderr


def _worker_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sereno worker",
        description="Evaluate the events that ingest nodes (sereno serve --kafka) put on a "
        "Kafka topic, as one of a group of workers that share its partitions; write alert "
        "changes to the alerts topic, and to standard output (or --alerts-log).",
    )
    add_rules_option(parser)
    add_kafka_options(parser, required=True)
    parser.add_argument(
        "--group",
        metavar="NAME",
        default=DEFAULT_GROUP,
        help=f"the workers' consumer group (default {DEFAULT_GROUP})",
    )
    parser.add_argument("--alerts-log", metavar="FILE", help="append alert changes to FILE")
    parser.add_argument(
        "--db",
        metavar="FILE",
        type=Path,
        default=Path(DEFAULT_WORKER_DB),
        help="the SQLite file of the delivery stage: the notifications still to send, and the "
        f"log of deliveries (default {DEFAULT_WORKER_DB}, in the working directory)",
    )
    parser.add_argument(
        "--no-delivery",
        action="store_true",
        help="only evaluate: leave the notifications of the alerts topic to other workers",
    )
    add_lateness_option(parser)
    add_clock_skew_option(parser)
    add_receiver_options(parser)
    return parser


def command(argv: Sequence[str]) -> int:
    args = _worker_parser().parse_args(argv)
    settings = kafka_settings(args)
    assert settings is not None  # --kafka is required
    ruleset = load_ruleset(args.rules_config)
    receivers = receivers_config(args.config, webhook_option(args), ruleset)
    stopping = threading.Event()
    with ExitStack() as stack:
        log = sys.stdout.buffer
        if args.alerts_log is not None:
            log = stack.enter_context(open_for_append(args.alerts_log))
        worker = EvaluationWorker(
            settings,
            args.group,
            ruleset,
            receivers if receivers.receivers else None,
            args.allowed_lateness,
            args.max_clock_skew,
            ChangeLog(log).write,
        )
        delivery = None
        if not args.no_delivery:
            stack.enter_context(claim(args.db))
            create(args.db)
            delivery = DeliveryStage(settings, args.group, args.db, receivers, ruleset)
        worker.start()
        if delivery is not None:
            delivery.start()
            stack.callback(delivery.stop)
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, lambda number, frame: stopping.set())
        to_stderr(_started(args, settings, ruleset.source, delivery is not None))
        try:
            worker.run_until(lambda: stopping.is_set() or _failed(delivery))
        except KafkaError as error:
            to_stderr(f"sereno: stopped: {error}")
            return EXIT_REJECTED
    if delivery is not None and delivery.failure is not None:
        to_stderr(f"sereno: stopped: the delivery stage failed: {delivery.failure}")
        return EXIT_REJECTED
    return EXIT_OK


def _failed(delivery: DeliveryStage | None) -> bool:
    return delivery is not None and delivery.failure is not None


def _started(args: argparse.Namespace, settings: KafkaSettings, rules: str, delivers: bool) -> str:
    delivering = f", notifications from {settings.topics.alerts} (state in {args.db})"
    return (
        f"sereno: worker of group {args.group} evaluating {rules} from {settings.topics.events}"
        f"{delivering if delivers else ''}, {settings.describe()}"
    )
