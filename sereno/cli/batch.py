"""`sereno FILE`: evaluate the rules over a file of events and print the alerts."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import IO

from sereno import __version__
from sereno.cli.diagnostics import Diagnostics, progress_size, with_progress
from sereno.cli.options import (
    COMMANDS,
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    add_clock_skew_option,
    add_lateness_option,
    add_rules_option,
    load_ruleset,
    open_input,
)
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode
from sereno.engine.windows import Windows
from sereno.events.reader import EventBatch, EventReader
from sereno.events.schema import event_type
from sereno.events.times import EventTimes
from sereno.rules.rulefmt import RuleSet
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
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--episodes",
        action="store_true",
        help="one line per alert episode (from the minute it fired to the minute it was "
        "resolved, or still firing) instead of one per minute",
    )
    shown.add_argument(
        "--notices",
        action="store_true",
        help="one line per notice the alerts' changes call for (fired, escalated, no data, "
        "flapping, resolved...: what `sereno serve` tells receivers, reminders aside) "
        "instead of one per alert per minute",
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
        told: list[Episode] = []
        engine = Engine(
            ruleset,
            problems.condition,
            keep_episodes=args.episodes,
            on_change=(lambda change: told.append(change) if change.tell else None)
            if args.notices
            else None,
        )
        windows = Windows(args.allowed_lateness, max_skew=args.max_clock_skew)
        for alerts in engine.run_batches(batches, windows, problems):
            if args.episodes:
                sink.write_episodes(engine.take_resolved())
            elif args.notices:
                sink.write_notices(told)
                told.clear()
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
            "episode" if args.episodes else "notice" if args.notices else "alert",
        )
        to_stderr(summary.line())
    return EXIT_REJECTED if problems.any else EXIT_OK
