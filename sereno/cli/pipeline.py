"""A batch run's stages, wired: the input, its reader, the engine and its windows; and the
run's end (condition errors, the summary line, the exit status). `sereno FILE` runs them;
with `--jobs`, the first job does, handing the other jobs their parts of each window."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from sereno.cli.diagnostics import Diagnostics, progress_size, with_progress
from sereno.cli.options import EXIT_OK, EXIT_REJECTED, open_input
from sereno.engine.engine import Engine
from sereno.engine.evaluate import ConditionErrorHandler
from sereno.engine.lifecycle import Episode
from sereno.engine.windows import Window, Windows
from sereno.events.reader import EventBatch, EventReader
from sereno.events.schema import event_type
from sereno.events.times import EventTimes
from sereno.rules.rulefmt import RuleSet
from sereno.sinks.console import RunSummary
from sereno.stderr import to_stderr


@dataclass
class Pipeline:
    reader: EventReader
    batches: Iterator[EventBatch]
    engine: Engine
    windows: Windows


def open_pipeline(
    args: argparse.Namespace,
    ruleset: RuleSet,
    problems: Diagnostics,
    stack: ExitStack,
    now: float,
    *,
    on_condition_error: ConditionErrorHandler | None = None,
    on_change: Callable[[Episode], None] | None = None,
    own_part: Callable[[Window], Window] | None = None,
) -> Pipeline:
    """The stages of a run over `args.file`, the clock read once at `now`; `own_part`: the
    part of each window this process evaluates (the first of several jobs)."""
    stream, name = open_input(args.file, stack)
    times = EventTimes(now=now, max_skew=args.max_clock_skew)
    reader = EventReader(stream, name, problems.record, event_type(ruleset.fields), times)
    batches: Iterator[EventBatch] = reader.batches()
    size = progress_size(stream)
    if size is not None:
        batches = with_progress(batches, reader, size)
    engine = engine_for(
        args, ruleset, on_condition_error or problems.condition, on_change, own_part
    )
    windows = Windows(args.allowed_lateness, max_skew=args.max_clock_skew)
    return Pipeline(reader, batches, engine, windows)


def engine_for(
    args: argparse.Namespace,
    ruleset: RuleSet,
    on_condition_error: ConditionErrorHandler,
    on_change: Callable[[Episode], None] | None = None,
    own_part: Callable[[Window], Window] | None = None,
) -> Engine:
    """The engine of a batch run, as `args` ask."""
    return Engine(
        ruleset,
        on_condition_error,
        keep_episodes=args.episodes,
        on_change=on_change,
        own_part=own_part,
        alerts_only=not (args.episodes or args.notices),
    )


def finish(
    args: argparse.Namespace,
    ruleset: RuleSet,
    problems: Diagnostics,
    reader: EventReader,
    per_rule: Counter[str],
) -> int:
    """The end of a run on stderr: condition errors, an empty input, the summary line; and
    the exit status."""
    problems.report_conditions()
    if reader.records_read == 0:
        problems.warn(f"{reader.name}: no events in the input")
    if not args.quiet:
        summary = RunSummary(
            reader.records_read,
            problems.rejected,
            problems.late,
            per_rule,
            [spec.name for spec in ruleset.rules],
            "episode" if args.episodes else "notice" if args.notices else "alert",
        )
        to_stderr(summary.line())
    return EXIT_REJECTED if problems.any else EXIT_OK
