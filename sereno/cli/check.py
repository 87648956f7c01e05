"""`sereno check`: validate a rules file (and a notification config) and list them."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from sereno.cli.options import EXIT_OK, Parser, add_config_option, load_ruleset
from sereno.notify.config import NotifyConfig, describe_receiver, load_config
from sereno.notify.maintenance import MaintenanceWindow
from sereno.notify.matchers import describe
from sereno.notify.timeintervals import (
    HORIZON,
    TimeInterval,
    location_at,
    next_occurrences,
    wall_clock,
)
from sereno.rules.conditions import Condition
from sereno.rules.rulefmt import (
    DEFAULT_MISSING_AFTER,
    DEFAULT_ON_MISSING,
    DEFAULT_QUORUM,
    Level,
    RuleSpec,
    format_duration,
)
from sereno.text import counted


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


# --- sereno check --------------------------------------------------------------------------


def command(argv: Sequence[str]) -> int:
    args = _check_parser().parse_args(argv)
    ruleset = load_ruleset(args.rules)
    config = load_config(args.config, ruleset) if args.config is not None else None
    print(
        f"{ruleset.source}: valid, {len(ruleset.rules)} rules, {len(ruleset.severities)} severities"
    )
    for spec in ruleset.rules:
        print(_describe(spec))
    if config is not None:
        print(_describe_config(config, time.time()))
    return EXIT_OK


def _describe_config(config: NotifyConfig, now: float) -> str:
    """The receivers, then when each time interval and each maintenance window next hold."""
    held = [counted(len(config.receivers), "receiver")]
    if config.time_intervals:
        held.append(counted(len(config.time_intervals), "time interval"))
    if config.maintenance_windows:
        held.append(counted(len(config.maintenance_windows), "maintenance window"))
    lines = [f"{config.source}: valid, {', '.join(held)}"]
    lines.extend(describe_receiver(receiver) for receiver in config.receivers)
    lines.extend(_describe_interval(interval, now) for interval in config.time_intervals)
    lines.extend(_describe_window(window, now) for window in config.maintenance_windows)
    return "\n".join(lines)


def _describe_interval(interval: TimeInterval, now: float) -> str:
    return "\n".join([f"  time interval {interval.name}, next:", *_next_periods(interval, now)])


def _describe_window(window: MaintenanceWindow, now: float) -> str:
    """What it covers, during which intervals, and its next three periods: those of its
    intervals together, one when they follow one another."""
    matchers = ", ".join(describe(matcher) for matcher in window.matchers)
    during = ", ".join(interval.name for interval in window.intervals)
    header = f"  maintenance window {window.name}: {matchers}; during {during}, next:"
    return "\n".join([header, *_next_periods(window.schedule, now)])


def _next_periods(interval: TimeInterval, now: float) -> list[str]:
    """The next three periods of `interval`, one a line, on the clocks of its location."""
    periods = next_occurrences(interval, now, 3)
    lines = []
    for start, end in periods:
        shown = wall_clock(start, location_at(interval, start))
        if start == now:
            shown += " (now)"
        length = "5 years or more" if end >= now + HORIZON else format_duration(int(end - start))
        lines.append(f"    {shown}, for {length}")
    if not periods:
        lines.append("    none in the next 5 years")
    return lines


def _describe(spec: RuleSpec) -> str:
    kind = spec.kind
    if spec.absent is not None:
        kind += f" {format_duration(spec.absent)}"
    threshold = f", threshold {spec.threshold}" if spec.threshold is not None else ""
    lines = [f"  {spec.name}"]
    if len(spec.levels) == 1:
        (level,) = spec.levels
        hold = f", for {format_duration(level.hold)}" if level.hold else ""
        lines.append(f"    {level.severity.name}, {kind}{threshold}{hold}")
        lines.append(f"    condition ({_engine(level.condition)}): {level.condition.text}")
    else:
        span = f"{spec.levels[0].severity.name} to {spec.levels[-1].severity.name}"
        lines.append(f"    {span}, {kind}{threshold}")
        lines.extend(f"    {_describe_level(level)}" for level in spec.levels)
    lines.extend(f"    {setting}" for setting in _settings(spec))
    return "\n".join(lines)


def _describe_level(level: Level) -> str:
    hold = f", for {format_duration(level.hold)}" if level.hold else ""
    condition = level.condition
    return f"level {level.severity.name}{hold}, condition ({_engine(condition)}): {condition.text}"


def _engine(condition: Condition) -> str:
    return "compiled" if condition.compiled else "rule-engine"


def _settings(spec: RuleSpec) -> list[str]:
    """The rule's alert controls that differ from their defaults, one line each."""
    settings: list[str] = []
    if spec.recover_when is not None:
        recovery = spec.recover_when
        settings.append(f"recover when ({_engine(recovery)}): {recovery.text}")
    if spec.keep_firing_for:
        settings.append(f"keep firing for {format_duration(spec.keep_firing_for)}")
    if (spec.on_missing, spec.missing_after) != (DEFAULT_ON_MISSING, DEFAULT_MISSING_AFTER):
        after = format_duration(spec.missing_after)
        settings.append(f"no data for {after}: {spec.on_missing.value}")
    if spec.flapping is not None:
        flapping = spec.flapping
        settings.append(
            f"flapping: window {flapping.window}, high {flapping.high:g}, low {flapping.low:g}"
        )
    if spec.majority and (spec.quorum != DEFAULT_QUORUM or spec.min_active != 1):
        settings.append(
            f"quorum: {spec.quorum.text} of the active servers, "
            f"with at least {counted(spec.min_active, 'active server')}"
        )
    if spec.inhibited_by:
        sources = ", ".join(repr(name) for name in spec.inhibited_by)
        settings.append(f"inhibited by: {sources} (equal: {', '.join(spec.equal)})")
    return settings
