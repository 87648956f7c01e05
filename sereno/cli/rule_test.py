"""`sereno test`: run rule unit tests written in YAML."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sereno.cli.options import EXIT_OK, EXIT_REJECTED, Parser
from sereno.engine.ruletest import run_test_file
from sereno.stderr import to_stderr
from sereno.text import counted

# --- sereno test ---------------------------------------------------------------------------


def command(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="sereno test",
        description="Run rule unit tests: exit 0 if they all pass, 1 if any fails, "
        "2 if a test or rules file is bad.",
    )
    parser.add_argument("files", metavar="TESTFILE", nargs="+", help="a YAML test file")
    args = parser.parse_args(argv)
    outcomes = []
    for name in args.files:
        print(name)
        for outcome in run_test_file(Path(name)):
            print(outcome.report())
            outcomes.append(outcome)
    failed = sum(not outcome.passed for outcome in outcomes)
    total = counted(len(outcomes), "test")
    to_stderr(f"sereno: {total}, {len(outcomes) - failed} passed, {failed} failed")
    return EXIT_REJECTED if failed else EXIT_OK
