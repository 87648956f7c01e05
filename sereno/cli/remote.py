"""What the commands that talk to a running service share (`sereno silence`, `sereno ack`):
how to reach it, and who is asking. Imported only by them: the HTTP client is not for
`sereno FILE` to load."""

from __future__ import annotations

import argparse
import getpass
import socket

from sereno.cli.options import read_tokens
from sereno.serve.client import ServiceClient


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """How a command reaches a running service: its URL and a bearer token."""
    parser.add_argument(
        "--url", default="http://127.0.0.1:8080", help="the service (default http://127.0.0.1:8080)"
    )
    parser.add_argument("--token-file", metavar="FILE", help="send the first token of FILE")


def service_client(args: argparse.Namespace) -> ServiceClient:
    token = min(read_tokens(args.token_file)) if args.token_file else None
    return ServiceClient(args.url, token)


def default_author() -> str:
    """Who makes a silence or an acknowledgement, unless told: USER@HOST."""
    return f"{getpass.getuser()}@{socket.gethostname()}"
