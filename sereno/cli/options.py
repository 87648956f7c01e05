"""What the commands share: the parser, exit statuses, common options and inputs."""

from __future__ import annotations

import argparse
import io
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, NoReturn

from sereno.engine.windows import DEFAULT_ALLOWED_LATENESS
from sereno.errors import SerenoError
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW
from sereno.rules.rulefmt import RuleSet, load_default_rules, load_rules


class InputError(SerenoError):
    """A file or address named on the command line that cannot be used: an events input
    that is missing or a directory, an unreadable token file, a port in use."""


EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2


COMMANDS = {
    "check": "validate a rules file and list its rules",
    "test": "run rule unit tests written in YAML",
    "serve": "run the service agents push events to, over HTTP",
    "worker": "evaluate events from Kafka, one of a group of workers (see Scaling out)",
    "push": "replay a file of events to a running service",
    "notify-test": "send a test notification to each receiver",
    "dead-letters": "list the journal entries the service set aside at start",
    "silence": "make, list and expire a running service's silences",
    "ack": "acknowledge a running service's alerts, or take it back",
}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"sereno: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return seconds


def add_lateness_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allowed-lateness",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_ALLOWED_LATENESS,
        help="how long after a minute ends its events may still arrive out of order "
        f"(default {DEFAULT_ALLOWED_LATENESS:g}); later ones are reported as late",
    )


def add_clock_skew_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-clock-skew",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_MAX_CLOCK_SKEW,
        help="how far an event's timestamp may run ahead of this machine's clock, and ahead "
        "of the rest of the fleet's events (default "
        f"{DEFAULT_MAX_CLOCK_SKEW:g}); events further ahead are rejected (see README)",
    )


def add_rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r",
        "--rules-config",
        metavar="FILE",
        help="the rules file (default: the rules packaged with sereno)",
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the notification config: the receivers told of alerts (see README)",
    )


def load_ruleset(path: str | None) -> RuleSet:
    return load_default_rules() if path is None else load_rules(path)


# --- sereno FILE ---------------------------------------------------------------------------


def open_input(path: str, stack: ExitStack) -> tuple[io.BufferedReader, str]:
    if path == "-":
        stdin = sys.stdin.buffer
        assert isinstance(stdin, io.BufferedReader)
        return stdin, "<stdin>"
    try:
        stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    return stream, path


DEFAULT_DB = "sereno.db"
DEFAULT_WORKER_DB = "sereno-worker.db"


def open_for_append(path: str) -> IO[bytes]:
    try:
        return open(path, "ab")
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None


def read_tokens(path: str | None) -> frozenset[str]:
    if path is None:
        return frozenset()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the token file {path}: {error}") from None
    tokens = frozenset(line.strip() for line in lines if line.strip())
    if not tokens:
        raise InputError(f"the token file {path} holds no token")
    return tokens
