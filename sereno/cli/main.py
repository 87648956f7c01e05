"""Command line: parses arguments and wires the stages together, nothing more."""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, NoReturn

from sereno import __version__
from sereno.cli.diagnostics import Diagnostics, progress_size, with_progress
from sereno.engine.engine import Engine
from sereno.engine.ruletest import run_test_file
from sereno.engine.windows import DEFAULT_ALLOWED_LATENESS, Windows
from sereno.errors import InputError, RulesError, SerenoError
from sereno.events.reader import EventBatch, EventReader
from sereno.events.schema import event_type
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW, EventTimes
from sereno.notify.config import describe_receiver, load_config
from sereno.rules.rulefmt import RuleSet, RuleSpec, format_duration, load_default_rules, load_rules
from sereno.sinks.console import (
    AlertSink,
    CountingSink,
    JsonSink,
    RunSummary,
    TextSink,
    severity_palette,
    wants_color,
)
from sereno.stderr import to_stderr
from sereno.text import counted

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


COMMANDS = {
    "check": "validate a rules file and list its rules",
    "test": "run rule unit tests written in YAML",
    "serve": "run the service agents push events to, over HTTP",
    "push": "replay a file of events to a running service",
    "notify-test": "send a test notification to each receiver",
    "dead-letters": "list the journal entries the service set aside at start",
}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"sereno: error: {message}\n")


def _batch_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  sereno {name:<14}{text}" for name, text in COMMANDS.items())
    parser = Parser(
        prog="sereno",
        usage="sereno [options] FILE\n       sereno COMMAND [options] ...",
        description="Evaluate alerting rules over a file of JSON events and print the alerts.",
        epilog=(
            f"commands:\n{commands}\n  (sereno COMMAND -h shows a command's options)\n\n"
            "exit status: 0 done; 1 done, but some records were rejected, arrived late or\n"
            "could not be evaluated; 2 usage error, unreadable input or bad rules."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file", metavar="FILE", help="events as a JSON array or JSON Lines; - reads standard input"
    )
    add_rules_option(parser)
    parser.add_argument(
        "-s", "--show-severity", action="store_true", help="put each alert's severity first"
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the classic alert lines (default); json: one JSON object per alert per line",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour text alerts by severity: auto (default) only on a terminal and "
        "unless NO_COLOR is set",
    )
    parser.add_argument(
        "--episodes",
        action="store_true",
        help="one line per alert episode (from the minute it fired to the minute it was "
        "resolved, or still firing) instead of one per minute",
    )
    add_lateness_option(parser)
    add_clock_skew_option(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad record (exit status 2) instead of skipping it",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no summary line on standard error"
    )
    parser.add_argument("-v", "--version", action="version", version=f"sereno {__version__}")
    return parser


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return seconds


def add_lateness_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allowed-lateness",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_ALLOWED_LATENESS,
        help="how long after a minute ends its events may still arrive out of order "
        f"(default {DEFAULT_ALLOWED_LATENESS:g}); later ones are reported as late",
    )


def add_clock_skew_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-clock-skew",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_MAX_CLOCK_SKEW,
        help="how far an event's timestamp may run ahead of this machine's clock, and ahead "
        "of the rest of the fleet's events (default "
        f"{DEFAULT_MAX_CLOCK_SKEW:g}); events further ahead are rejected (see README)",
    )


def add_rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r",
        "--rules-config",
        metavar="FILE",
        help="the rules file (default: the rules packaged with sereno)",
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the notification config: the receivers told of alerts (see README)",
    )


def _check_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sereno check",
        description="Validate a rules file (and, with --config, a notification config for "
        "it) and list what it holds; exit 0 if it is valid, 2 if not.",
    )
    parser.add_argument(
        "rules",
        metavar="RULES",
        nargs="?",
        help="the rules file (default: the rules packaged with sereno)",
    )
    add_config_option(parser)
    return parser


def load_ruleset(path: str | None) -> RuleSet:
    return load_default_rules() if path is None else load_rules(path)


# --- sereno check --------------------------------------------------------------------------


def check_command(argv: Sequence[str]) -> int:
    args = _check_parser().parse_args(argv)
    ruleset = load_ruleset(args.rules)
    config = load_config(args.config, ruleset) if args.config is not None else None
    print(
        f"{ruleset.source}: valid, {len(ruleset.rules)} rules, {len(ruleset.severities)} severities"
    )
    for spec in ruleset.rules:
        print(_describe(spec))
    if config is not None:
        print(f"{config.source}: valid, {counted(len(config.receivers), 'receiver')}")
        for receiver in config.receivers:
            print(describe_receiver(receiver))
    return EXIT_OK


def _describe(spec: RuleSpec) -> str:
    kind = spec.kind
    if spec.absent is not None:
        kind += f" {format_duration(spec.absent)}"
    threshold = f", threshold {spec.threshold}" if spec.threshold is not None else ""
    if spec.hold:
        threshold += f", for {format_duration(spec.hold)}"
    engine = "compiled" if spec.condition.compiled else "rule-engine"
    return (
        f"  {spec.name}\n"
        f"    {spec.severity.name}, {kind}{threshold}\n"
        f"    condition ({engine}): {spec.condition.text}"
    )


# --- sereno test ---------------------------------------------------------------------------


def test_command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno test",
        description="Run rule unit tests: exit 0 if they all pass, 1 if any fails, "
        "2 if a test or rules file is bad.",
    )
    parser.add_argument("files", metavar="TESTFILE", nargs="+", help="a YAML test file")
    args = parser.parse_args(argv)
    outcomes = []
    for name in args.files:
        print(name)
        for outcome in run_test_file(Path(name)):
            print(outcome.report())
            outcomes.append(outcome)
    failed = sum(not outcome.passed for outcome in outcomes)
    total = counted(len(outcomes), "test")
    to_stderr(f"sereno: {total}, {len(outcomes) - failed} passed, {failed} failed")
    return EXIT_REJECTED if failed else EXIT_OK


# --- sereno serve and sereno push -----------------------------------------------------------


def notify_test_command(argv: Sequence[str]) -> int:
    from sereno.cli.service import notify_test_command  # noqa: PLC0415

    return notify_test_command(argv)


def dead_letters_command(argv: Sequence[str]) -> int:
    from sereno.cli.service import dead_letters_command  # noqa: PLC0415

    return dead_letters_command(argv)


def serve_command(argv: Sequence[str]) -> int:
    # the service's stack (FastAPI, uvicorn, httpx) takes half a second to import: only the
    # commands that need it pay for it
    from sereno.cli.service import serve_command  # noqa: PLC0415

    return serve_command(argv)


def push_command(argv: Sequence[str]) -> int:
    from sereno.cli.service import push_command  # noqa: PLC0415

    return push_command(argv)


# --- sereno FILE ---------------------------------------------------------------------------


def open_input(path: str, stack: ExitStack) -> tuple[io.BufferedReader, str]:
    if path == "-":
        stdin = sys.stdin.buffer
        assert isinstance(stdin, io.BufferedReader)
        return stdin, "<stdin>"
    try:
        stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    return stream, path


def _sink(args: argparse.Namespace, ruleset: RuleSet, stdout: IO[bytes]) -> AlertSink:
    if args.format == "json":
        return JsonSink(stdout)
    palette = severity_palette(ruleset) if wants_color(args.color, sys.stdout) else None
    return TextSink(stdout, show_severity=args.show_severity, palette=palette)


def _collect_garbage_less_often() -> None:
    """A run makes millions of short-lived containers, none of them in reference cycles that
    matter; each time they set off the cycle collector, it walks every long-lived object too.
    Set aside what start-up made, and collect a hundred times less often."""
    gc.freeze()
    gc.set_threshold(70_000, 20, 100)


def batch_command(argv: Sequence[str]) -> int:
    args = _batch_parser().parse_args(argv)
    ruleset = load_ruleset(args.rules_config)
    _collect_garbage_less_often()
    problems = Diagnostics(strict=args.strict)
    stdout = sys.stdout.buffer
    sink = CountingSink(_sink(args, ruleset, stdout))
    with ExitStack() as stack:
        stream, name = open_input(args.file, stack)
        times = EventTimes(now=time.time(), max_skew=args.max_clock_skew)
        reader = EventReader(stream, name, problems.record, event_type(ruleset.fields), times)
        batches: Iterator[EventBatch] = reader.batches()
        size = progress_size(stream)
        if size is not None:
            batches = with_progress(batches, reader, size)
        engine = Engine(ruleset, problems.condition, keep_episodes=args.episodes)
        windows = Windows(args.allowed_lateness, max_skew=args.max_clock_skew)
        for alerts in engine.run_batches(batches, windows, problems):
            if args.episodes:
                sink.write_episodes(engine.take_resolved())
            else:
                sink.write(alerts)
        if args.episodes:
            sink.write_episodes(engine.firing())
        stdout.flush()
    problems.report_conditions()
    if reader.records_read == 0:
        problems.warn(f"{name}: no events in the input")
    if not args.quiet:
        summary = RunSummary(
            reader.records_read,
            problems.rejected,
            problems.late,
            sink.per_rule,
            [spec.name for spec in ruleset.rules],
            "episode" if args.episodes else "alert",
        )
        to_stderr(summary.line())
    return EXIT_REJECTED if problems.any else EXIT_OK


# --- entry point ---------------------------------------------------------------------------

_SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "check": check_command,
    "test": test_command,
    "serve": serve_command,
    "push": push_command,
    "notify-test": notify_test_command,
    "dead-letters": dead_letters_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = _SUBCOMMANDS.get(arguments[0]) if arguments else None
    try:
        if command is not None:
            return command(arguments[1:])
        return batch_command(arguments)
    except RulesError as error:
        for problem in error.problems:
            to_stderr(problem)
        to_stderr(f"sereno: the {error.what} was refused")
        return EXIT_USAGE
    except SerenoError as error:
        to_stderr(f"sereno: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        to_stderr("sereno: interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (`sereno FILE | head`): stop quietly, as other filters do;
        # stdout now points at /dev/null so that the final flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
