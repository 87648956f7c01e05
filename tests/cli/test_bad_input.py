"""Bad input, case by case: the message, the exit status, and the good records still evaluated."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DATA, event, example_files, json_lines, refusal_messages, run_sereno

GOOD = event(
    server="reporting_pdf02",
    service="ReportPDFGenerator",
    component="DiskUsedPercentage",
    value=0.95,
    timestamp=1476057600,
)
GOOD_ALERT = (
    "ALERT timestamp: 1476057600, component: DiskUsedPercentage, value: 0.95, "
    "server: reporting_pdf02, service: ReportPDFGenerator\n"
)
GOOD_LINE = json.dumps(GOOD)


def with_value(field: str, raw: str) -> str:
    """GOOD as a JSON line with `field` set to the raw JSON text `raw`."""
    return json.dumps({**GOOD, field: "@"}).replace('"@"', raw)


@dataclass(frozen=True)
class Case:
    content: bytes
    status: int
    message: str  # expected on stderr; {path} is the input file
    alert: bool = True  # the good record's alert is still printed
    args: tuple[str, ...] = ()


def lines(*records: str) -> bytes:
    return ("\n".join(records) + "\n").encode()


EVENT_CASES = {  # the other bad events files are in data/events
    "non-UTF-8 bytes": Case(
        lines(GOOD_LINE) + b'{"server": "caf\xe9"}\n', 1, "{path}:2: not valid UTF-8 text"
    ),
    "empty file": Case(b"", 0, "sereno: {path}: no events in the input", alert=False),
    "blank file": Case(b"\n  \n", 0, "sereno: {path}: no events in the input", alert=False),
    "empty array": Case(b"[]", 0, "sereno: {path}: no events in the input", alert=False),
    "strict stops at a bad record": Case(
        lines(with_value("value", '"x"'), GOOD_LINE),
        2,
        "sereno: {path}:1: field 'value': expected a finite number, got a string "
        "(stopped: --strict)",
        alert=False,
        args=("--strict",),
    ),
}


@pytest.mark.parametrize("case", EVENT_CASES.values(), ids=EVENT_CASES.keys())
def test_bad_events(case: Case, write_file: Callable[[str, bytes], Path]) -> None:
    path = write_file("events.json", case.content)
    result = run_sereno(*case.args, path)
    assert result.returncode == case.status, result.stderr
    assert case.message.format(path=path) in result.stderr
    assert result.stdout == (GOOD_ALERT if case.alert else "")
    assert "Traceback" not in result.stderr


EVENT_FILES = example_files("events", "bad", "json*")


@pytest.mark.parametrize("events", EVENT_FILES, ids=[path.name for path in EVENT_FILES])
def test_a_bad_events_file(events: Path) -> None:
    """Its bad records are reported with the messages of `NAME.bad.txt`, exit status 1; its good
    record is still evaluated."""
    result = run_sereno(events)
    assert result.returncode == 1, result.stderr
    for message in refusal_messages(events):
        assert message in result.stderr
    assert result.stdout == GOOD_ALERT
    assert "Traceback" not in result.stderr


def test_bad_events_on_stdin_are_located_as_stdin() -> None:
    result = run_sereno("-", stdin=lines(GOOD_LINE, with_value("value", "true")))
    assert result.returncode == 1
    assert "<stdin>:2: field 'value': expected a finite number, got a boolean" in result.stderr
    assert result.stdout == GOOD_ALERT


def test_too_many_problems_are_counted_not_all_printed(
    write_file: Callable[[str, bytes], Path],
) -> None:
    path = write_file("events.jsonl", lines(*["{}"] * 150, GOOD_LINE))
    result = run_sereno(path)
    assert result.returncode == 1
    assert result.stdout == GOOD_ALERT
    messages = result.stderr.splitlines()
    assert len(messages) == 102
    assert messages[100] == "sereno: more than 100 problems; the rest are only counted"
    assert messages[101].endswith("151 records read, 150 rejected")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.json", "sereno: cannot read {path}: No such file or directory"),
        (".", "sereno: cannot read {path}: Is a directory"),
    ],
    ids=["nonexistent file", "directory"],
)
def test_unreadable_input(target: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / target
    result = run_sereno(path)
    assert result.returncode == 2
    assert result.stderr == message.format(path=path) + "\n"
    assert result.stdout == ""


RULES_FILES = example_files("rules")
CONFIG_FILES = example_files("configs")


def assert_taken_or_refused(
    result: subprocess.CompletedProcess[str], path: Path, refused: str
) -> None:
    """`NAME.good.yaml` is taken: exit status 0; `NAME.bad.yaml` is refused: exit status 2 and
    exactly the messages of `NAME.bad.txt` ({path} is the file's path), then `refused`."""
    assert "Traceback" not in result.stderr
    if path.name.endswith(".good.yaml"):
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [*refusal_messages(path), refused]
    assert result.stderr == "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize("rules", RULES_FILES, ids=[path.name for path in RULES_FILES])
def test_a_rules_file_is_taken_or_refused(
    rules: Path, write_file: Callable[[str, bytes], Path]
) -> None:
    """By `sereno check` and by `sereno -r`."""
    events = write_file("events.jsonl", json_lines(GOOD))
    for args in (("-r", rules, events), ("check", rules)):
        assert_taken_or_refused(run_sereno(*args), rules, "sereno: the rules file was refused")


@pytest.mark.parametrize("config", CONFIG_FILES, ids=[path.name for path in CONFIG_FILES])
def test_a_config_file_is_taken_or_refused(config: Path) -> None:
    """By `sereno check --config`."""
    result = run_sereno("check", "--config", config)
    assert_taken_or_refused(result, config, "sereno: the config file was refused")


@pytest.mark.parametrize(
    ("folder", "suffixes"),
    [("rules", (".yaml",)), ("configs", (".yaml",)), ("events", (".json", ".jsonl"))],
    ids=["rules", "configs", "events"],
)
def test_a_data_folder_holds_only_good_and_bad_files(
    folder: str, suffixes: tuple[str, ...]
) -> None:
    """A file named otherwise would be no test case; a bad one needs its messages, and its
    messages a bad file."""
    good = tuple(f".good{suffix}" for suffix in suffixes)
    bad = tuple(f".bad{suffix}" for suffix in suffixes)
    for path in (DATA / folder).iterdir():
        assert path.name.endswith((*good, *bad, ".bad.txt")), path
    files = sorted(path.stem for path in (DATA / folder).iterdir() if path.name.endswith(bad))
    txt = sorted(path.stem for path in (DATA / folder).glob("*.bad.txt"))
    assert files == txt


def test_a_missing_rules_file(tmp_path: Path) -> None:
    result = run_sereno("-r", tmp_path / "nope.yaml", "-")
    assert result.returncode == 2
    assert result.stderr == (
        f"{tmp_path / 'nope.yaml'}: cannot read the rules file: No such file or directory\n"
        "sereno: the rules file was refused\n"
    )
