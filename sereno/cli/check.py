"""`sereno check`: validate a rules file (and a notification config) and list them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sereno.cli.options import EXIT_OK, Parser, add_config_option, load_ruleset
from sereno.notify.config import describe_receiver, load_config
from sereno.rules.rulefmt import RuleSpec, format_duration
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
    if spec.levels[0].hold:
        threshold += f", for {format_duration(spec.levels[0].hold)}"
    engine = "compiled" if spec.condition.compiled else "rule-engine"
    return (
        f"  {spec.name}\n"
        f"    {spec.severity.name}, {kind}{threshold}\n"
        f"    condition ({engine}): {spec.condition.text}"
    )
