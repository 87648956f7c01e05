"""The rules file: the packaged defaults load, and every mistake is named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from sereno.rules.rulefmt import RulesError, load_default_rules, load_rules, parse_rules

from conftest import DATA, example_files, refusal_messages

HEADER = """\
severities:
  MEDIUM: {description: "It's getting worse", color: yellow}
  HIGH: {description: "It's pretty bad", color: magenta}
rules:
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "r.yaml")
    return raised.value.problems


def test_the_packaged_rules_are_the_seed_rules() -> None:
    ruleset = load_default_rules()
    assert [s.name for s in ruleset.severities] == ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    disk, load = ruleset.rules
    assert (disk.name, disk.severity.name, disk.threshold, disk.majority) == (
        "Disk consumption exceeds 90%",
        "MEDIUM",
        "90%",
        False,
    )
    assert disk.condition.text == 'component == "DiskUsedPercentage" and value > 0.9 and active'
    assert (load.name, load.severity.name, load.threshold, load.majority) == (
        "5 min load average exceeds 4.0",
        "HIGH",
        "4.0",
        True,
    )
    assert load.condition.text == 'component == "Load5mAvg" and value > 4.0 and active'
    assert disk.condition.compiled and load.condition.compiled
    assert ruleset.fields == {"component", "value", "active"}


def test_a_seed_format_file_loads_unchanged() -> None:
    (rule,) = load_rules(DATA / "rules" / "seed-format.good.yaml").rules
    assert rule.description.startswith("Send an alert")
    assert rule.severity.color == "yellow"


def test_threshold_is_kept_as_written() -> None:
    ruleset = parse_rules(
        HEADER
        + "  - {name: a, severity: HIGH, condition: value > 4, threshold: 4.00, majority: true}\n",
        "r.yaml",
    )
    assert ruleset.rules[0].threshold == "4.00"


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "  - {name: a, severity: LOW, condition: value > 1}\n",
            "r.yaml:5:25: rule 'a': key 'severity': unknown severity 'LOW' (known: MEDIUM, HIGH)",
        ),
        (
            "  - {name: a, severity: HIGH, condition: value >}\n",
            "r.yaml:5:42: rule 'a': key 'condition': syntax error at the end of the condition "
            "'value >'",
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, colour: red}\n",
            "r.yaml:5:53: rule 'a': unknown key 'colour' (known keys: name, description, "
            "severity, condition, threshold, majority, for, absent, summary, levels, recover_when, "
            "keep_firing_for, on_missing, missing_after, flapping, quorum, min_active, "
            "inhibited_by, equal)",
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, majority: 1}\n",
            "r.yaml:5:63: rule 'a': key 'majority': expected true or false, got a number",
        ),
        (
            "  - {name: [a], severity: HIGH, condition: value > 1}\n",
            "r.yaml:5:12: rule '#1': key 'name': expected a string, got a list",
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, majority: true}\n",
            "r.yaml:5:5: rule 'a': majority rules need a 'threshold' to show in their alerts",
        ),
        (
            "  - {name: a, severity: HIGH}\n",
            "r.yaml:5:5: rule 'a': missing required key 'condition'",
        ),
    ],
)
def test_a_bad_rule_is_named_with_line_and_column(rules: str, expected: str) -> None:
    assert problems(HEADER + rules) == [expected]


BAD_FILES = example_files("rules", "bad")


@pytest.mark.parametrize("path", BAD_FILES, ids=[path.name for path in BAD_FILES])
def test_a_bad_file_is_refused_as_a_whole(path: Path) -> None:
    """Refused with every problem of `NAME.bad.txt`, not just the first."""
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    assert raised.value.problems == refusal_messages(path)


def test_an_unreadable_rules_file_is_a_rules_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read the rules file: No such file or directory"):
        load_rules(tmp_path / "missing.yaml")
