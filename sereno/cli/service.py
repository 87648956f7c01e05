"""Command line of the service: `sereno serve`, `sereno push`, `sereno notify-test` and
`sereno dead-letters`, parsing and wiring only."""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO

import msgspec
import uvicorn

from sereno.cli.diagnostics import Diagnostics
from sereno.cli.main import (
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    add_clock_skew_option,
    add_config_option,
    add_lateness_option,
    add_rules_option,
    load_ruleset,
    open_input,
)
from sereno.errors import InputError, RulesError
from sereno.events.body import DEFAULT_MAX_BODY
from sereno.events.push import in_time_order_batches, push
from sereno.events.reader import EventReader
from sereno.events.schema import event_type
from sereno.live.evaluator import LiveEngine
from sereno.notify.config import WebhookOption, receivers_config
from sereno.notify.notice import drill_notice
from sereno.notify.service import Notifications, fire_drill
from sereno.serve.app import Metrics, RulesReload, ServerConfig, create_app
from sereno.sinks.alertslog import ChangeLog
from sereno.state.store import (
    DeadLetter,
    Journal,
    Outbox,
    StateStore,
    StoreError,
    claim,
    create,
    read_dead_letters,
)
from sereno.stderr import to_stderr
from sereno.text import counted

DEFAULT_DB = "sereno.db"
WEBHOOK_ENV = "SERENO_WEBHOOK_URL"  # the webhook's URL, kept out of the command line
GIL_SWITCH_SECONDS = 0.001


def _listen_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT, such as 127.0.0.1:8080, got {text!r}"
        )
    return host.strip("[]"), int(port)


def _read_tokens(path: str | None) -> frozenset[str]:
    if path is None:
        return frozenset()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the token file {path}: {error}") from None
    tokens = frozenset(line.strip() for line in lines if line.strip())
    if not tokens:
        raise InputError(f"the token file {path} holds no token")
    return tokens


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
    add_lateness_option(parser)
    add_clock_skew_option(parser)
    add_receiver_options(parser)
    return parser


def serve_command(argv: Sequence[str]) -> int:
    args = _serve_parser().parse_args(argv)
    # the evaluator thread holds the GIL for whole minutes of events: hand it over to the
    # HTTP side every millisecond, not every 5 (an ingest request's p99 138 ms -> 98 ms)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    ruleset = load_ruleset(args.rules_config)
    webhook = webhook_option(args)
    receivers = receivers_config(args.config, webhook, ruleset)
    tokens = _read_tokens(args.token_file)
    config = ServerConfig(args.db, args.max_body, tokens, args.max_clock_skew)
    with ExitStack() as stack:
        stack.enter_context(claim(args.db))
        create(args.db)
        host, port = args.listen
        listening = stack.enter_context(_listen(host, port))
        log = sys.stdout.buffer
        if args.alerts_log is not None:
            log = stack.enter_context(_open_for_append(args.alerts_log))
        metrics = Metrics()
        state = StateStore(args.db, event_type(ruleset.fields))
        outbox = Outbox(args.db)
        notifications = Notifications(outbox, args.config, webhook, receivers, ruleset)
        live = LiveEngine(
            ruleset,
            args.allowed_lateness,
            state,
            ChangeLog(log).write,
            metrics.evaluation.observe,
            planner=notifications.planner,
            on_queued=notifications.delivery.wake,
            max_skew=args.max_clock_skew,
            on_dead_letter=_report_dead_letter,
        )
        journal = Journal(args.db)
        for store in (journal, state, outbox):
            stack.callback(store.close)
        metrics.watch(live)
        metrics.watch_delivery(notifications.delivery)
        reload_rules = RulesReload(args.rules_config, live, metrics, notifications)
        app = create_app(live, journal, metrics, config, reload_rules)
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


def _report_dead_letter(letter: DeadLetter) -> None:
    to_stderr(
        f"sereno: journal entry {letter.seq} ({_events_count(letter)}) set aside, "
        f"{letter.reason}; see sereno dead-letters"
    )


def _events_count(letter: DeadLetter) -> str:
    return "events unreadable" if letter.events is None else counted(letter.events, "event")


def dead_letters_command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno dead-letters",
        description="List the journal entries `sereno serve` set aside at start because they "
        "could not be replayed: one a line, with when they were set aside, how many events "
        "they hold and why.",
    )
    parser.add_argument(
        "--db",
        metavar="FILE",
        type=Path,
        default=Path(DEFAULT_DB),
        help=f"the service's state file (default {DEFAULT_DB}, in the working directory)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON Lines"
    )
    args = parser.parse_args(argv)
    letters = read_dead_letters(args.db)
    if args.format == "json":
        encoder = msgspec.json.Encoder()
        sys.stdout.buffer.write(b"".join(encoder.encode(letter) + b"\n" for letter in letters))
    else:
        sys.stdout.write("".join(f"{_dead_letter_line(letter)}\n" for letter in letters))
    to_stderr(f"sereno: {counted(len(letters), 'dead letter')} in {args.db}")
    return EXIT_OK


def _dead_letter_line(letter: DeadLetter) -> str:
    when = datetime.datetime.fromtimestamp(letter.set_aside, datetime.timezone.utc)
    return (
        f"{letter.seq}  {when.strftime('%Y-%m-%dT%H:%M:%SZ')}  "
        f"{_events_count(letter)}  {letter.reason}"
    )


def add_receiver_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    webhook = parser.add_mutually_exclusive_group()
    webhook.add_argument(
        "--webhook",
        metavar="URL",
        help="also send every alert change to this webhook (Alertmanager's webhook JSON); "
        f"a URL with credentials is better given by --webhook-file or {WEBHOOK_ENV}, which "
        "other users cannot see in the list of processes",
    )
    webhook.add_argument(
        "--webhook-file",
        metavar="FILE",
        help="the same, the URL read from the first non-blank line of FILE",
    )


def webhook_option(args: argparse.Namespace) -> WebhookOption | None:
    """The webhook of `--webhook URL`, `--webhook-file FILE` or else `SERENO_WEBHOOK_URL`."""
    if args.webhook is not None:
        return WebhookOption(args.webhook)
    if args.webhook_file is not None:
        return WebhookOption(_read_webhook_file(args.webhook_file), "--webhook-file")
    from_environment = os.environ.get(WEBHOOK_ENV, "").strip()
    return WebhookOption(from_environment, WEBHOOK_ENV) if from_environment else None


def _read_webhook_file(path: str) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid UTF-8 text"
        raise InputError(f"--webhook-file: cannot read {path}: {reason}") from None
    url = next((line.strip() for line in lines if line.strip()), None)
    if url is None:
        raise InputError(f"--webhook-file: {path} holds no URL")
    return url


def notify_test_command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno notify-test",
        description="Send a test notification, clearly marked as one, to each receiver (or "
        "to RECEIVER) and say whether each accepted it: a fire drill of the notification "
        "path. Exit 0 if every one did, 1 if not.",
    )
    parser.add_argument("receiver", metavar="RECEIVER", nargs="?", help="only this receiver")
    add_rules_option(parser)
    add_receiver_options(parser)
    args = parser.parse_args(argv)
    ruleset = load_ruleset(args.rules_config)
    config = receivers_config(args.config, webhook_option(args), ruleset)
    if not config.receivers:
        parser.error("no receiver to test: give --config FILE or --webhook URL")
    receivers = config.receivers
    if args.receiver is not None:
        receivers = tuple(spec for spec in receivers if spec.name == args.receiver)
        if not receivers:
            known = ", ".join(spec.name for spec in config.receivers)
            parser.error(f"no receiver is named {args.receiver!r} (receivers: {known})")
    failed = 0
    for spec, error in fire_drill(receivers, drill_notice(config, ruleset, time.time())):
        print(
            f"{spec.name} ({spec.type}): " + ("accepted" if error is None else f"FAILED: {error}")
        )
        failed += error is not None
    return EXIT_REJECTED if failed else EXIT_OK


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
        with suppress(RulesError, TimeoutError):
            reload_rules()

    signal.signal(
        signal.SIGHUP, lambda number, frame: threading.Thread(target=reload_quietly).start()
    )


def _open_for_append(path: str) -> IO[bytes]:
    try:
        return open(path, "ab")
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None


def push_command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno push",
        description="Replay a file of events to a running `sereno serve`, in event-time "
        "order, in batches.",
    )
    parser.add_argument("file", metavar="FILE", help="events as a JSON array or JSON Lines")
    parser.add_argument(
        "--url",
        default="http://127.0.0.1:8080/events",
        help="where to POST (default http://127.0.0.1:8080/events)",
    )
    parser.add_argument("--batch", type=int, default=1000, help="events a request (default 1000)")
    parser.add_argument(
        "--speed",
        type=float,
        help="pace by event time, this many times faster than real time (60: an hour a minute); "
        "by default as fast as the service takes them",
    )
    parser.add_argument("--token-file", metavar="FILE", help="send the first token of FILE")
    args = parser.parse_args(argv)
    if args.batch < 1 or (args.speed is not None and not args.speed > 0):
        parser.error("--batch and --speed must be positive")
    token = min(_read_tokens(args.token_file)) if args.token_file else None
    problems = Diagnostics(strict=False)
    with ExitStack() as stack:
        stream, name = open_input(args.file, stack)
        reader = EventReader(stream, name, problems.record)
        events = reader.read_all()
    report = push(in_time_order_batches(events, args.batch), args.url, args.speed, token)
    to_stderr(
        f"sereno: pushed {counted(len(events), 'event')} in {counted(report.requests, 'request')}: "
        f"{report.accepted} accepted, {report.rejected} rejected"
    )
    return EXIT_REJECTED if problems.any or report.rejected else EXIT_OK
