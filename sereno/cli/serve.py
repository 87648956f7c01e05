"""`sereno serve`: parse its options and wire the service's stages together."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from pathlib import Path

import uvicorn

from sereno.cli.dead_letters import events_count
from sereno.cli.kafka_options import add_kafka_options, kafka_settings
from sereno.cli.options import (
    DEFAULT_DB,
    EXIT_OK,
    EXIT_REJECTED,
    InputError,
    Parser,
    add_clock_skew_option,
    add_lateness_option,
    add_rules_option,
    load_ruleset,
    open_for_append,
    read_tokens,
)
from sereno.cli.receivers import add_receiver_options, webhook_option
from sereno.engine.records import AckRecord
from sereno.engine.windows import DEFAULT_ALLOWED_LATENESS
from sereno.errors import RefusedFile
from sereno.events.body import DEFAULT_MAX_BODY
from sereno.events.schema import event_type
from sereno.kafka.ingest import KafkaIngest, quiet
from sereno.kafka.settings import KafkaSettings
from sereno.kafka.topics import prepare_topics
from sereno.live.evaluator import LiveEngine
from sereno.live.fleet import DEFAULT_QUIET_AFTER, FORGET_AFTER
from sereno.live.process import EngineHooks, EvaluatorProcess
from sereno.notify.acks import Acks
from sereno.notify.config import receivers_config
from sereno.notify.delivery import notice_outbox
from sereno.notify.service import Notifications
from sereno.notify.silences import Silence
from sereno.notify.silencing import Silences
from sereno.rules.rulefmt import format_duration, parse_duration
from sereno.serve.app import create_app, create_ingest_app
from sereno.serve.config import ServerConfig
from sereno.serve.metrics import Metrics
from sereno.serve.readings import Served
from sereno.serve.reload import RulesReload
from sereno.sinks.alertslog import ChangeLog
from sereno.state.records import KeyedRecords
from sereno.state.store import (
    DeadLetter,
    Journal,
    StateStore,
    StoreError,
    claim,
    create,
)
from sereno.stderr import to_stderr
from sereno.text import counted


def _listen_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT, such as 127.0.0.1:8080, got {text!r}"
        )
    return host.strip("[]"), int(port)


def _quiet_after(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None or not 0 < seconds <= FORGET_AFTER:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 2m or 1h30m, from 1s to 24h, got {text!r}"
        )
    return float(seconds)


def _serve_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sereno serve",
        description="Take events over HTTP (POST /events), evaluate the rules as minutes "
        "close, and show the open alerts (GET /alerts). Every change of an alert's state is "
        "written as a JSON line to standard output (or --alerts-log).",
    )
    add_rules_option(parser)
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen_address,
        default=("127.0.0.1", 8080),
        help="where to listen (default 127.0.0.1:8080)",
    )
    parser.add_argument(
        "--db",
        metavar="FILE",
        type=Path,
        default=Path(DEFAULT_DB),
        help=f"the SQLite file that keeps alert state and history across restarts "
        f"(default {DEFAULT_DB}, in the working directory)",
    )
    parser.add_argument("--alerts-log", metavar="FILE", help="append alert changes to FILE")
    parser.add_argument(
        "--max-body",
        metavar="BYTES",
        type=int,
        default=DEFAULT_MAX_BODY,
        help=f"the largest request body taken, after decompression (default {DEFAULT_MAX_BODY})",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="bearer tokens, one a line: requests without one of them are refused (401)",
    )
    parser.add_argument(
        "--quiet-after",
        metavar="DURATION",
        type=_quiet_after,
        default=DEFAULT_QUIET_AFTER,
        help="how long a server may send nothing, in event time, before the fleet "
        f"(GET /api/fleet) calls it quiet (default {format_duration(int(DEFAULT_QUIET_AFTER))})",
    )
    add_lateness_option(parser)
    add_clock_skew_option(parser)
    add_receiver_options(parser)
    add_kafka_options(parser, required=False)
    return parser


def command(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    kafka = kafka_settings(args)
    if kafka is not None:
        return _serve_ingest_node(args, kafka)
    ruleset = load_ruleset(args.rules_config)
    webhook = webhook_option(args)
    receivers = receivers_config(args.config, webhook, ruleset)
    tokens = read_tokens(args.token_file)
    config = ServerConfig(args.db, args.max_body, tokens, args.max_clock_skew)
    with ExitStack() as stack:
        stack.enter_context(claim(args.db))
        create(args.db)
        host, port = args.listen
        listening = stack.enter_context(_listen(host, port))
        log = sys.stdout.buffer
        if args.alerts_log is not None:
            log = stack.enter_context(open_for_append(args.alerts_log))
        metrics = Metrics()
        outbox = notice_outbox(args.db)
        stored_silences = KeyedRecords(args.db, "silences", Silence)
        stored_acks = KeyedRecords(args.db, "acks", AckRecord)
        notifications = Notifications(
            outbox,
            args.config,
            webhook,
            receivers,
            ruleset,
            Silences(stored_silences),
            Acks(stored_acks),
        )

        def evaluator(hooks: EngineHooks) -> LiveEngine:
            """The engine, made in the evaluator process, on a state file connection of its own."""
            return LiveEngine(
                ruleset,
                args.allowed_lateness,
                StateStore(args.db, event_type(ruleset.fields)),
                ChangeLog(log).write,
                hooks.on_window,
                planner=hooks.planner,
                on_queued=hooks.on_queued,
                max_skew=args.max_clock_skew,
                on_dead_letter=_report_dead_letter,
                quiet_after=args.quiet_after,
                on_progress=hooks.on_progress,
            )

        live = EvaluatorProcess(
            ruleset,
            args.db,
            notifications,
            evaluator,
            metrics.evaluation.observe,
            not_inherited=[listening],
        )
        journal = Journal(args.db)
        for store in (journal, outbox, stored_silences, stored_acks):
            stack.callback(store.close)
        metrics.watch(live)
        metrics.watch_delivery(notifications.delivery)
        reload_rules = RulesReload(args.rules_config, live, metrics, notifications)
        app = create_app(Served(live, journal, metrics, reload_rules, notifications), config)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        # the journal keeps what was accepted: a restart (Restart=on-failure) carries on
        live.start(on_failure=lambda error: setattr(server, "should_exit", True))
        notifications.delivery.start()
        stack.callback(notifications.delivery.stop)
        _reload_on_hangup(reload_rules)
        to_stderr(f"sereno: serving {ruleset.source} on {_url(host, port)}, state in {args.db}")
        if receivers.receivers:
            names = ", ".join(spec.name for spec in receivers.receivers)
            to_stderr(f"sereno: notifying {counted(len(receivers.receivers), 'receiver')}: {names}")
        # uvicorn stops gracefully on SIGTERM or SIGINT, then raises the signal again: let that
        # second one pass, so that the evaluator is stopped too and the exit status is 0
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, signal.SIG_IGN)
        server.run(sockets=[listening])
        live.stop()
    if isinstance(live.failure, StoreError):
        to_stderr(f"sereno: stopped: {live.failure}")
        return EXIT_REJECTED
    if live.failure is not None:
        to_stderr(f"sereno: stopped: evaluation failed: {live.failure}")
        return EXIT_REJECTED
    to_stderr("sereno: stopped")
    return EXIT_OK


def _serve_ingest_node(args: argparse.Namespace, settings: KafkaSettings) -> int:
    """`--kafka`: take events over HTTP and produce them to the events topic; no state file,
    no evaluation (the workers do it). The rules file says only which fields events keep."""
    _refuse_evaluator_options(args)
    ruleset = load_ruleset(args.rules_config)
    tokens = read_tokens(args.token_file)
    config = ServerConfig(args.db, args.max_body, tokens, args.max_clock_skew)
    failure: list[str] = []

    def stop_for_good(reason: str) -> None:
        failure.append(reason)
        server.should_exit = True

    ingest = KafkaIngest(settings, event_type(ruleset.fields), on_fatal=stop_for_good)
    partitions = prepare_topics(quiet(settings), [settings.topics.events])
    host, port = args.listen
    with _listen(host, port) as listening:
        metrics = Metrics()
        metrics.registry.register(ingest.collector())
        app = create_ingest_app(ingest, metrics, config, lambda: ingest.running)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        ingest.start()
        topic = settings.topics.events
        to_stderr(
            f"sereno: ingest node on {_url(host, port)}: events to topic {topic} "
            f"({counted(partitions[topic], 'partition')}) of {settings.describe()}"
        )
        _reload_fields_on_hangup(args.rules_config, ingest, metrics)
        for stop_signal in (signal.SIGTERM, signal.SIGINT):  # as the service does, above
            signal.signal(stop_signal, signal.SIG_IGN)
        try:
            server.run(sockets=[listening])
        finally:
            left = ingest.stop()
    if left:  # their requests were answered 503: their clients send them again
        to_stderr(f"sereno: {counted(left, 'message')} not delivered at stop, answered 503")
    if failure:
        to_stderr(f"sereno: stopped: Kafka: {failure[0]}")
        return EXIT_REJECTED
    to_stderr("sereno: stopped")
    return EXIT_OK


def _reload_fields_on_hangup(path: str | None, ingest: KafkaIngest, metrics: Metrics) -> None:
    """SIGHUP reads the rules again, on an ingest node for the fields events keep: a rule
    of the workers' new rules may read a field the old ones did not."""

    def reload() -> None:
        try:
            ruleset = load_ruleset(path)
        except RefusedFile as error:
            metrics.reload_failures.inc()
            to_stderr(f"sereno: reload refused, events keep the old rules' fields:\n{error}")
            return
        ingest.event_type = event_type(ruleset.fields)
        metrics.reloads.inc()
        to_stderr(f"sereno: rules reloaded from {ruleset.source}: events keep the fields they read")

    signal.signal(signal.SIGHUP, lambda number, frame: threading.Thread(target=reload).start())


def _refuse_evaluator_options(args: argparse.Namespace) -> None:
    """The options of evaluation and notification mean nothing on an ingest node: said, not
    silently ignored."""
    given = [
        option
        for option, value, default in (
            ("--db", args.db, Path(DEFAULT_DB)),
            ("--alerts-log", args.alerts_log, None),
            ("--config", args.config, None),
            ("--webhook", args.webhook, None),
            ("--webhook-file", args.webhook_file, None),
            ("--quiet-after", args.quiet_after, DEFAULT_QUIET_AFTER),
            ("--allowed-lateness", args.allowed_lateness, DEFAULT_ALLOWED_LATENESS),
        )
        if value != default
    ]
    if given:
        raise InputError(
            f"{given[0]} has no use with --kafka: an ingest node keeps no state and evaluates "
            "nothing (sereno worker does)"
        )


def _report_dead_letter(letter: DeadLetter) -> None:
    to_stderr(
        f"sereno: journal entry {letter.seq} ({events_count(letter)}) set aside, "
        f"{letter.reason}; see sereno dead-letters"
    )


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a port in use is a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it each answer waits for the client's delayed ACK (40 ms)
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise InputError(f"cannot listen on {_url(host, port)}: {reason}") from None
    return listening


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _reload_on_hangup(reload_rules: RulesReload) -> None:
    """SIGHUP reloads the rules, in a thread of its own: the handler must not block the
    server, and a refused file is logged and counted by the reload itself."""

    def reload_quietly() -> None:
        with suppress(RefusedFile, TimeoutError):
            reload_rules()

    signal.signal(
        signal.SIGHUP, lambda number, frame: threading.Thread(target=reload_quietly).start()
    )
