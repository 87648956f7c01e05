"""`sereno push`: replay a file of events to a running service."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

from sereno.cli.diagnostics import Diagnostics
from sereno.cli.options import (
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    open_input,
    read_tokens,
)
from sereno.events.push import in_time_order_batches, push
from sereno.events.reader import EventReader
from sereno.stderr import to_stderr
from sereno.text import counted


def command(argv: Sequence[str]) -> int:
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
    token = min(read_tokens(args.token_file)) if args.token_file else None
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
