"""`sereno silence add|list|expire`: the silences of a running `sereno serve`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime

import msgspec

from sereno.cli.options import EXIT_OK, Parser
from sereno.cli.remote import add_service_options, default_author, service_client
from sereno.notify.matchers import parse_matcher
from sereno.notify.silences import parse_silence_duration
from sereno.serve.answers import SilenceAnswer, SilenceRequest
from sereno.serve.client import ServiceClient
from sereno.stderr import to_stderr
from sereno.text import counted, iso_time


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sereno silence",
        description="Make, list and expire the silences of a running `sereno serve`: the "
        "alerts a silence's matchers select are told to nobody until it ends.",
    )
    connection = Parser(add_help=False)
    add_service_options(connection)
    commands = parser.add_subparsers(dest="action", required=True, metavar="add|list|expire")
    add = commands.add_parser(
        "add", parents=[connection], help="make a silence", description="Make a silence."
    )
    add.add_argument(
        "matchers",
        metavar="MATCHER",
        nargs="+",
        help="label matchers, all of which an alert must meet: service=InboxService, "
        'server=~"inbox_0[12]", severity!=LOW, rule!~".*disk.*"',
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument(
        "--for", dest="duration", metavar="DURATION", help="how long: 1h, 30m, 2h30m"
    )
    until.add_argument(
        "--until",
        metavar="TIME",
        help="when it ends, ISO 8601 with a time zone (2026-11-29T18:00Z)",
    )
    add.add_argument("--comment", required=True, help="why: shown with the silence")
    add.add_argument("--author", help="who makes it (default: USER@HOST)")
    listing = commands.add_parser(
        "list", parents=[connection], help="list the silences", description="List the silences."
    )
    listing.add_argument("--all", action="store_true", help="the expired ones too")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    expire = commands.add_parser(
        "expire", parents=[connection], help="expire silences now", description="Expire silences."
    )
    expire.add_argument("ids", metavar="ID", nargs="+")
    return parser


def command(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    client = service_client(args)
    if args.action == "add":
        return _add(client, args, parser)
    if args.action == "list":
        return _list(client, args.all, args.format)
    for silence_id in args.ids:
        expired = client.expire_silence(silence_id)
        to_stderr(f"sereno: silence {expired.id} expired")
    return EXIT_OK


def _add(client: ServiceClient, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    matchers = [parse_matcher(text) for text in args.matchers]  # said here, not after a request
    if args.duration is not None:
        parse_silence_duration(args.duration)
    ends_at = _seconds(args.until, parser) if args.until is not None else None
    request = SilenceRequest(
        args.matchers,
        args.author or default_author(),
        args.comment,
        ends_at=ends_at,
        duration=args.duration,
    )
    made = client.add_silence(request)
    print(made.id)
    to_stderr(
        f"sereno: silence {made.id} made: {_described(made)} ({counted(len(matchers), 'matcher')})"
    )
    return EXIT_OK


def _seconds(text: str, parser: argparse.ArgumentParser) -> float:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parser.error(f"--until: {text!r} is not a time such as 2026-11-29T18:00:00Z")
    if when.tzinfo is None:
        parser.error(f"--until: {text!r} has no time zone (end it with Z or +01:00)")
    return when.timestamp()


def _list(client: ServiceClient, everything: bool, form: str) -> int:
    listed = client.silences()
    shown = [*listed.active, *listed.pending, *(listed.expired if everything else [])]
    if form == "json":
        for silence in shown:
            print(msgspec.json.encode(silence).decode())
    else:
        for silence in shown:
            print(f"{silence.id}  {silence.state:<7}  {_described(silence)}")
    to_stderr(f"sereno: {counted(len(shown), 'silence')}")
    return EXIT_OK


def _described(silence: SilenceAnswer) -> str:
    ends = silence.expired_at if silence.expired_at is not None else silence.ends_at
    return (
        f"{', '.join(silence.matchers)} from {_second(silence.starts_at)} to {_second(ends)}, "
        f"by {silence.created_by}: {silence.comment}"
    )


def _second(timestamp: float) -> str:
    return iso_time(int(timestamp))
