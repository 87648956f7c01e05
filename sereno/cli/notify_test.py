"""`sereno notify-test`: a fire drill of the notification path."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sereno.cli.options import (
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    add_rules_option,
    load_ruleset,
)
from sereno.cli.receivers import add_receiver_options, webhook_option
from sereno.notify.config import receivers_config
from sereno.notify.notice import drill_notice
from sereno.notify.service import fire_drill


def command(argv: Sequence[str]) -> int:
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
