"""`sereno ack ID`: say you have an alert of a running `sereno serve` (no reminders until it
resolves or its severity rises); `--undo` takes it back."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.cli.options import EXIT_OK, Parser
from sereno.cli.remote import add_service_options, default_author, service_client
from sereno.stderr import to_stderr


def command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno ack",
        description="Acknowledge open alerts of a running `sereno serve` by their id (as "
        "GET /alerts, the status page and notifications show it): they are not reminded of "
        "until they resolve or their severity rises, and their notices say who has them.",
    )
    parser.add_argument("ids", metavar="ID", nargs="+", help="the alerts' ids")
    parser.add_argument("--comment", default="", help="what you are doing about it")
    parser.add_argument("--author", help="who has it (default: USER@HOST)")
    parser.add_argument("--undo", action="store_true", help="take the acknowledgements back")
    add_service_options(parser)
    args = parser.parse_args(argv)
    client = service_client(args)
    for alert_id in args.ids:
        if args.undo:
            taken = client.undo_ack(alert_id)
            to_stderr(f"sereno: alert {taken.alert_id} is no longer acknowledged by {taken.by}")
        else:
            ack = client.ack(alert_id, args.author or default_author(), args.comment)
            to_stderr(f"sereno: alert {ack.alert_id} acknowledged by {ack.by} at {ack.severity}")
    return EXIT_OK
