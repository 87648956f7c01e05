"""`sereno dead-letters`: list the journal entries `sereno serve` set aside."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from sereno.cli.options import (
    DEFAULT_DB,
    EXIT_OK,
    Parser,
)
from sereno.state.store import (
    DeadLetter,
    read_dead_letters,
)
from sereno.stderr import to_stderr
from sereno.text import counted


def events_count(letter: DeadLetter) -> str:
    return "events unreadable" if letter.events is None else counted(letter.events, "event")


def command(argv: Sequence[str]) -> int:
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
        f"{events_count(letter)}  {letter.reason}"
    )
