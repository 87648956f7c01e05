"""The entry point: which command runs; the service's commands are imported only when run."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from sereno.cli.batch import batch_command
from sereno.cli.options import EXIT_OK, EXIT_USAGE
from sereno.errors import RefusedFile, SerenoError
from sereno.stderr import to_stderr

Command = Callable[[Sequence[str]], int]


def _imported_when_run(module: str) -> Command:
    """The `command` of `module`, imported only when it runs: the service's stack (FastAPI,
    uvicorn, httpx) takes half a second to import, and the receivers' config that `check`
    reads a tenth of one, which `sereno FILE` need not pay."""

    def run(argv: Sequence[str]) -> int:
        command: Command = importlib.import_module(module).command
        return command(argv)

    return run


_SUBCOMMANDS: dict[str, Command] = {
    "check": _imported_when_run("sereno.cli.check"),
    "test": _imported_when_run("sereno.cli.rule_test"),
    "serve": _imported_when_run("sereno.cli.serve"),
    "worker": _imported_when_run("sereno.cli.worker"),
    "push": _imported_when_run("sereno.cli.push"),
    "notify-test": _imported_when_run("sereno.cli.notify_test"),
    "dead-letters": _imported_when_run("sereno.cli.dead_letters"),
    "silence": _imported_when_run("sereno.cli.silence"),
    "ack": _imported_when_run("sereno.cli.ack"),
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = _SUBCOMMANDS.get(arguments[0]) if arguments else None
    try:
        if command is not None:
            return command(arguments[1:])
        return batch_command(arguments)
    except RefusedFile as error:
        for problem in error.problems:
            to_stderr(problem)
        to_stderr(f"sereno: the {error.what} was refused")
        return EXIT_USAGE
    except SerenoError as error:
        to_stderr(f"sereno: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        to_stderr("sereno: interrupted")
        return 130
    except BrokenPipeError:
        # the reader went away (`sereno FILE | head`): stop quietly, as other filters do;
        # stdout now points at /dev/null so that the final flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
