"""`sereno FILE`: evaluate the rules over a file of events and print the alerts."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from typing import IO

from sereno import __version__
from sereno.cli.diagnostics import Diagnostics
from sereno.cli.jobcount import MAX_JOBS, jobs_for
from sereno.cli.options import (
    COMMANDS,
    Parser,
    add_clock_skew_option,
    add_lateness_option,
    add_rules_option,
    load_ruleset,
)
from sereno.cli.pipeline import finish, open_pipeline
from sereno.engine.lifecycle import Episode
from sereno.garbage import collect_less_often
from sereno.rules.rulefmt import RuleSet
from sereno.sinks.console import (
    CountingSink,
    JsonSink,
    LineSink,
    TextSink,
    severity_palette,
    wants_color,
)


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
        "-j",
        "--jobs",
        type=_job_count,
        metavar="N",
        help="evaluate with N processes, each for a share of the services; the output is "
        "the same (default: one per core for a file of 64 MB or more, else 1; always 1 for "
        "standard input, --strict and --notices)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no summary line on standard error"
    )
    parser.add_argument("-v", "--version", action="version", version=f"sereno {__version__}")
    return parser


def _job_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected a number of jobs from 1 to {MAX_JOBS}")
    return count


def _sink(args: argparse.Namespace, ruleset: RuleSet, stdout: IO[bytes]) -> LineSink:
    if args.format == "json":
        return JsonSink(stdout)
    palette = severity_palette(ruleset) if wants_color(args.color, sys.stdout) else None
    return TextSink(stdout, show_severity=args.show_severity, palette=palette)


def batch_command(argv: Sequence[str]) -> int:
    args = _batch_parser().parse_args(argv)
    ruleset = load_ruleset(args.rules_config)
    collect_less_often()
    stdout = sys.stdout.buffer
    sink = _sink(args, ruleset, stdout)
    jobs = jobs_for(args, ruleset)
    if jobs > 1:
        # imported here: multiprocessing and its kin take a run of one job ~10 ms to import
        from sereno.cli.jobs import run_in_jobs  # noqa: PLC0415

        return run_in_jobs(args, ruleset, sink, jobs, stdout)
    problems = Diagnostics(strict=args.strict)
    counted = CountingSink(sink)
    with ExitStack() as stack:
        told: list[Episode] = []
        on_change = (
            (lambda change: told.append(change) if change.tell else None) if args.notices else None
        )
        run = open_pipeline(args, ruleset, problems, stack, time.time(), on_change=on_change)
        engine = run.engine
        for alerts in engine.run_batches(run.batches, run.windows, problems):
            if args.episodes:
                counted.write_episodes(engine.take_resolved())
            elif args.notices:
                counted.write_notices(told)
                told.clear()
            else:
                counted.write(alerts)
        if args.episodes:
            counted.write_episodes(engine.firing())
        stdout.flush()
    return finish(args, ruleset, problems, run.reader, counted.per_rule)
