"""`sereno test`: rule unit tests pass, fail with expected-versus-got, or are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import REPO, run_sereno

WriteFile = Callable[[str, bytes | str], Path]

RULES = """
severities: {LOW: {}}
rules:
  - name: disk
    severity: LOW
    condition: component == "Disk" and value > 0.9
    for: 2m
  - name: silent
    severity: LOW
    absent: 2m
"""


def test_the_shipped_tests_of_the_default_rules_pass() -> None:
    result = run_sereno("test", REPO / "examples" / "default_rules_test.yaml")
    assert result.returncode == 0, result.stdout
    assert result.stderr == "sereno: 4 tests, 4 passed, 0 failed\n"
    assert "FAIL" not in result.stdout


def test_for_and_silence_can_be_tested(write_file: WriteFile) -> None:
    write_file("rules.yaml", RULES)
    tests = write_file(
        "t.yaml",
        """
rules: rules.yaml
tests:
  - name: disk pending one minute, then firing; b silent 2 minutes by the end of minute 1
    service: S
    series:
      a Disk: 0.95 0.95 0.95 0.5 0.5 0.5
      b Disk: 0.5  _    _    _    _    0.5
    alerts:
      - {minute: 1, rule: disk, server: a}
      - {minute: 2, rule: disk, server: a}
      - {minute: 1, rule: silent, server: b}
      - {minute: 2, rule: silent, server: b}
      - {minute: 3, rule: silent, server: b}
      - {minute: 4, rule: silent, server: b}
    episodes:
      - {rule: disk, server: a, started: 0, ended: 3}
      - {rule: silent, server: b, started: 1, ended: 5}
""",
    )
    result = run_sereno("test", tests)
    assert (result.returncode, result.stderr) == (0, "sereno: 1 test, 1 passed, 0 failed\n")


def test_a_failing_test_says_what_was_expected_and_what_was_raised(write_file: WriteFile) -> None:
    write_file("rules.yaml", RULES)
    tests = write_file(
        "t.yaml",
        """
rules: rules.yaml
tests:
  - name: wrong on purpose
    service: S
    series:
      a Disk: 0.95 0.95
    alerts:
      - {minute: 0, rule: disk, server: a}
""",
    )
    result = run_sereno("test", tests)
    assert result.returncode == 1
    assert result.stdout.splitlines()[1:] == [
        "  FAIL wrong on purpose",
        "       alerts differ:",
        "         expected, not raised: minute 0: 'disk' for a",
        "         raised, not expected: minute 1: 'disk' for a",
    ]
    assert result.stderr == "sereno: 1 test, 0 passed, 1 failed\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tests: []", "t.yaml: no tests"),
        ("tests:\n  - {name: x, alerts: [], colour: red}", "unknown field `colour`"),
        ("tests:\n  - {name: x}", "test 'x': expects no alerts, episodes or notices"),
        (
            "tests:\n  - {name: x, series: {a Disk: 1 2}, alerts: []}",
            "series 'a Disk': write 'SERVER COMPONENT' and give the server's service",
        ),
        (
            "tests:\n  - {name: x, service: S, series: {a Disk: 1 high}, alerts: []}",
            "'high' is not a number",
        ),
        (
            "tests:\n  - {name: x, alerts: [{minute: 0, rule: r}]}",
            "needs a 'server' (or, for a majority rule, a 'service')",
        ),
        ("tests:\n  - {name: x, events: [{server: a}], alerts: []}", "events[0]"),
        ("rules: missing.yaml\ntests:\n  - {name: x, alerts: []}", "cannot read the rules file"),
        ("tests: [", "t.yaml:1:9: not valid YAML: expected the node content"),
        ("tests: " + "[" * 1500, "t.yaml:1:1007: not valid YAML: exceeded maximum nesting depth"),
        ("tests:\n  - name: a\x07\n", "t.yaml:2:12: not valid YAML: unacceptable character"),
        ("tests: !!python/object:os.system x\n", "t.yaml:1:8: not valid YAML: could not"),
    ],
)
def test_a_bad_test_file_is_refused(content: str, message: str, write_file: WriteFile) -> None:
    result = run_sereno("test", write_file("t.yaml", content))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(line.startswith(" ") for line in result.stderr.splitlines())  # one-liners


def test_a_test_file_not_in_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(b"tests: \xff\xfe\n")
    result = run_sereno("test", str(path))
    assert result.returncode == 2
    assert f"{path}: cannot read the test file: not valid UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr
