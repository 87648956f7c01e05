"""The rules file: the packaged defaults load, and every mistake is named with its place."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from sereno.rules.rulefmt import (
    DEFAULT_MISSING_AFTER,
    DEFAULT_ON_MISSING,
    DEFAULT_QUORUM,
    Flapping,
    OnMissing,
    Quorum,
    RulesError,
    RuleSpec,
    default_rules_text,
    load_default_rules,
    load_rules,
    parse_quorum,
    parse_rules,
)

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
    assert (disk.on_missing, disk.missing_after) == (OnMissing.RESOLVE, 600)
    assert (load.on_missing, load.missing_after) == (OnMissing.RESOLVE, 300)
    for spec in (disk, load):
        assert len(spec.levels) == 1 and spec.levels[0].hold == 0
        assert (spec.recover_when, spec.keep_firing_for, spec.flapping) == (None, 0, None)
        assert (spec.quorum, spec.min_active, spec.inhibited_by) == (DEFAULT_QUORUM, 1, ())


def test_the_example_rules_of_the_packaged_header_load() -> None:
    """The commented-out rules showing the optional keys are valid as written (with the
    silence rule they name)."""
    header = default_rules_text().split("\nseverities:")[0]
    start = header.index("#   - name: Disk filling up")
    end = header.index("#     missing_after: 3m") + len("#     missing_after: 3m")
    examples = "\n".join(line.removeprefix("# ") for line in header[start:end].splitlines())
    ruleset = parse_rules(
        "severities: {MEDIUM: {}, HIGH: {}, CRITICAL: {}}\n"
        "rules:\n"
        "  - {name: Server silent, severity: HIGH, absent: 3m}\n" + examples + "\n",
        "header",
    )
    _, disk, load = ruleset.rules
    assert [level.severity.name for level in disk.levels] == ["MEDIUM", "CRITICAL"]
    assert (disk.keep_firing_for, disk.on_missing, disk.flapping) == (
        600,
        OnMissing.KEEP,
        Flapping(),
    )
    assert (disk.inhibited_by, disk.equal) == (("Server silent",), ("service", "server"))
    assert (load.quorum, load.min_active) == (Quorum(">= 2/3", Fraction(2, 3), strict=False), 2)
    assert (load.on_missing, load.missing_after) == (OnMissing.ALERT, 180)


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


# --- the alert's controls ------------------------------------------------------------------

MAJORITY = "majority: true, threshold: 1"  # what a majority rule needs besides its condition


def rule(text: str) -> RuleSpec:
    """The one rule of HEADER + `text`, which must load."""
    (only,) = parse_rules(HEADER + text, "r.yaml").rules
    return only


def test_a_rule_without_the_new_keys_has_their_defaults() -> None:
    spec = rule("  - {name: a, severity: HIGH, condition: value > 1, for: 2m}\n")
    (level,) = spec.levels
    assert (level.severity.name, level.condition.text, level.hold) == ("HIGH", "value > 1", 120)
    assert spec.recover_when is None and spec.keep_firing_for == 0
    assert (spec.on_missing, spec.missing_after) == (DEFAULT_ON_MISSING, DEFAULT_MISSING_AFTER)
    assert spec.flapping is None
    assert (spec.quorum, spec.min_active) == (DEFAULT_QUORUM, 1)
    assert (spec.inhibited_by, spec.equal) == ((), ("service",))


def test_levels_are_sorted_least_severe_first_whatever_their_order() -> None:
    spec = rule(
        "  - name: a\n"
        "    levels:\n"
        "      - {severity: HIGH, condition: value > 0.95}\n"
        "      - {severity: MEDIUM, condition: value > 0.9, for: 5m}\n"
    )
    assert [(lv.severity.name, lv.condition.text, lv.hold) for lv in spec.levels] == [
        ("MEDIUM", "value > 0.9", 300),
        ("HIGH", "value > 0.95", 0),
    ]
    assert spec.severity.name == "MEDIUM"


def test_one_level_is_a_rule_of_its_own_severity() -> None:
    spec = rule("  - {name: a, levels: [{severity: HIGH, condition: value > 1, for: 1m}]}\n")
    assert [(lv.severity.name, lv.hold) for lv in spec.levels] == [("HIGH", 60)]


def test_recovery_keep_firing_and_missing_data() -> None:
    spec = rule(
        "  - {name: a, severity: HIGH, condition: value > 0.9, recover_when: value < 0.8,\n"
        "     keep_firing_for: 10m, on_missing: keep, missing_after: 1m}\n"
    )
    assert spec.recover_when is not None and spec.recover_when.text == "value < 0.8"
    assert [c.text for c in spec.conditions] == ["value > 0.9", "value < 0.8"]
    assert (spec.keep_firing_for, spec.on_missing, spec.missing_after) == (600, OnMissing.KEEP, 60)


@pytest.mark.parametrize("choice", ["keep", "resolve", "alert"])
def test_on_missing_takes_each_choice(choice: str) -> None:
    spec = rule(f"  - {{name: a, severity: HIGH, condition: value > 1, on_missing: {choice}}}\n")
    assert spec.on_missing is OnMissing(choice)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("true", Flapping(21, 0.5, 0.25)),
        ("false", None),
        ("{}", Flapping(21, 0.5, 0.25)),
        ("{window: 10}", Flapping(10, 0.5, 0.25)),
        ("{window: 3, high: 1, low: 0.1}", Flapping(3, 1.0, 0.1)),
        ("{window: 100, high: 0.3}", Flapping(100, 0.3, 0.25)),
        ("{low: 0.4}", Flapping(21, 0.5, 0.4)),
    ],
)
def test_flapping_forms(written: str, expected: Flapping | None) -> None:
    spec = rule(f"  - {{name: a, severity: HIGH, condition: value > 1, flapping: {written}}}\n")
    assert spec.flapping == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("'> 50%'", Quorum("> 50%", Fraction(1, 2), strict=True)),
        ("'>= 50%'", Quorum(">= 50%", Fraction(1, 2), strict=False)),
        ("'> 2/3'", Quorum("> 2/3", Fraction(2, 3), strict=True)),
        ("'>=2/3'", Quorum(">=2/3", Fraction(2, 3), strict=False)),
        ("'>  66.7 %'", Quorum(">  66.7 %", Fraction(667, 1000), strict=True)),
        ("'>= 3 / 4'", Quorum(">= 3 / 4", Fraction(3, 4), strict=False)),
        ("'>= 100%'", Quorum(">= 100%", Fraction(1), strict=False)),
        ("'> 0%'", Quorum("> 0%", Fraction(0), strict=True)),
        ("at least 3", Quorum("at least 3", count=3)),
        ("'at  least 1'", Quorum("at  least 1", count=1)),
    ],
)
def test_quorum_forms(written: str, expected: Quorum) -> None:
    spec = rule(
        f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: {written}}}\n"
    )
    assert spec.quorum == expected


def test_quorum_is_met_as_written() -> None:
    assert not parse_quorum("> 50%").met(2, 4) and parse_quorum(">= 50%").met(2, 4)
    assert parse_quorum("> 2/3").met(3, 4) and not parse_quorum("> 2/3").met(2, 3)
    assert parse_quorum("at least 2").met(2, 10) and not parse_quorum("at least 2").met(1, 1)


def test_min_active() -> None:
    spec = rule(
        f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, min_active: 2}}\n"
    )
    assert spec.min_active == 2


def test_inhibitions_name_other_rules_and_their_labels() -> None:
    ruleset = parse_rules(
        HEADER
        + "  - {name: down, severity: HIGH, condition: value > 2}\n"
        + "  - {name: slow, severity: MEDIUM, condition: value > 1, inhibited_by: [down],\n"
        + "     equal: [service, server]}\n"
        + f"  - {{name: busy, severity: MEDIUM, condition: value > 1, {MAJORITY},\n"
        + "     inhibited_by: [down, slow]}\n",
        "r.yaml",
    )
    down, slow, busy = ruleset.rules
    assert (down.inhibited_by, down.equal) == ((), ("service",))
    assert (slow.inhibited_by, slow.equal) == (("down",), ("service", "server"))
    assert (busy.inhibited_by, busy.equal) == (("down", "slow"), ("service",))


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "  - {name: a, levels: [], condition: value > 1}\n",
            [
                "r.yaml:5:23: rule 'a': key 'levels': expected a list of one or more levels, "
                "each a mapping with severity, condition and for, got an empty list",
                "r.yaml:5:38: rule 'a': key 'condition': not allowed with 'levels' (each level "
                "gives its own)",
            ],
        ),
        (
            "  - {name: a, levels: {severity: HIGH}}\n",
            [
                "r.yaml:5:23: rule 'a': key 'levels': expected a list of one or more levels, "
                "each a mapping with severity, condition and for, got a mapping",
            ],
        ),
        (
            "  - {name: a, levels: [HIGH]}\n",
            [
                "r.yaml:5:24: rule 'a': key 'levels': level #1 must be a mapping with "
                "severity, condition and for, got a string",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: HIGH}]}\n",
            [
                "r.yaml:5:24: rule 'a': missing required key 'condition' in level #1",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: LOW, condition: value > 1}]}\n",
            [
                "r.yaml:5:35: rule 'a': key 'severity': unknown severity 'LOW' (known: MEDIUM, "
                "HIGH)",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: HIGH, condition: value >}]}\n",
            [
                "r.yaml:5:52: rule 'a': key 'condition': syntax error at the end of the "
                "condition 'value >'",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: HIGH, condition: value > 1, for: soon}]}\n",
            [
                "r.yaml:5:68: rule 'a': key 'for': expected a duration such as 90s, 5m or 1h, "
                "got 'soon'",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: HIGH, condition: value > 1, hold: 5m}]}\n",
            [
                "r.yaml:5:63: rule 'a': unknown key 'hold' in level #1 (known keys: severity, "
                "condition, for)",
            ],
        ),
        (
            "  - {name: a, levels: [{severity: HIGH, condition: value > 1}, "
            "{severity: HIGH, condition: value > 2}]}\n",
            [
                "r.yaml:5:75: rule 'a': key 'levels': severity 'HIGH' has two levels: each "
                "level needs its own severity",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, for: 5m, levels: [{severity: HIGH, "
            "condition: value > 1}]}\n",
            [
                "r.yaml:5:25: rule 'a': key 'severity': not allowed with 'levels' (each level "
                "gives its own)",
                "r.yaml:5:36: rule 'a': key 'for': not allowed with 'levels' (each level gives "
                "its own)",
            ],
        ),
        (
            "  - {name: a, absent: 5m, levels: [{severity: HIGH, condition: value > 1}]}\n",
            [
                "r.yaml:5:35: rule 'a': key 'levels': not allowed on an 'absent' rule",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, recover_when: value <}\n",
            [
                "r.yaml:5:67: rule 'a': key 'recover_when': syntax error at the end of the "
                "condition 'value <'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, absent: 5m, recover_when: value < 1}\n",
            [
                "r.yaml:5:57: rule 'a': key 'recover_when': not allowed on an 'absent' rule",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, keep_firing_for: 0s}\n",
            [
                "r.yaml:5:70: rule 'a': key 'keep_firing_for': must be at least 1s, got '0s'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, keep_firing_for: later}\n",
            [
                "r.yaml:5:70: rule 'a': key 'keep_firing_for': expected a duration such as "
                "90s, 5m or 1h, got 'later'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, absent: 5m, keep_firing_for: 5m}\n",
            [
                "r.yaml:5:60: rule 'a': key 'keep_firing_for': not allowed on an 'absent' rule",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, on_missing: ignore}\n",
            [
                "r.yaml:5:65: rule 'a': key 'on_missing': expected one of keep, resolve, "
                "alert, got 'ignore'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, missing_after: 30s}\n",
            [
                "r.yaml:5:68: rule 'a': key 'missing_after': must be at least 1m, got '30s'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, absent: 5m, on_missing: keep}\n",
            [
                "r.yaml:5:55: rule 'a': key 'on_missing': not allowed on an 'absent' rule, "
                "which is about missing data itself (its 'absent' duration says how long)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, absent: 5m, missing_after: 10m}\n",
            [
                "r.yaml:5:58: rule 'a': key 'missing_after': not allowed on an 'absent' rule, "
                "which is about missing data itself (its 'absent' duration says how long)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: yes please}\n",
            [
                "r.yaml:5:63: rule 'a': key 'flapping': expected true, false or a mapping, got "
                "a string",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {window: 2}}\n",
            [
                "r.yaml:5:72: rule 'a': key 'flapping.window': the number of evaluations, from "
                "3 to 100, got 2",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {window: 101}}\n",
            [
                "r.yaml:5:72: rule 'a': key 'flapping.window': the number of evaluations, from "
                "3 to 100, got 101",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {window: 2.5}}\n",
            [
                "r.yaml:5:72: rule 'a': key 'flapping.window': expected a whole number, got a "
                "number",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {high: 0.2}}\n",
            [
                "r.yaml:5:70: rule 'a': key 'flapping': needs 0 < low < high <= 1, got low "
                "0.25 and high 0.2",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, "
            "flapping: {high: 1.5, low: 0.2}}\n",
            [
                "r.yaml:5:80: rule 'a': key 'flapping': needs 0 < low < high <= 1, got low 0.2 "
                "and high 1.5",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {high: 0.5, low: 0}}\n",
            [
                "r.yaml:5:80: rule 'a': key 'flapping': needs 0 < low < high <= 1, got low 0 "
                "and high 0.5",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {high: much}}\n",
            [
                "r.yaml:5:70: rule 'a': key 'flapping.high': expected a number, got a string",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, flapping: {size: 5}}\n",
            [
                "r.yaml:5:64: rule 'a': unknown key 'size' in 'flapping' (known keys: window, "
                "high, low)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, quorum: '> 50%'}\n",
            [
                "r.yaml:5:61: rule 'a': key 'quorum': only for majority rules (majority: true)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, min_active: 2}\n",
            [
                "r.yaml:5:65: rule 'a': key 'min_active': only for majority rules (majority: true)",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: most}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': expected a share such as \"> 50%\", "
                '">= 2/3" or "at least 3", got \'most\'',
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: 50}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': expected a string, got a number",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, "
            f"quorum: '> 100%'}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': no number of servers is more than all of "
                "them, got '> 100%'",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, "
            f"quorum: '>= 150%'}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': a share must be between 0 and 1 (100%), "
                "got '>= 150%'",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: '> 3/2'}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': a share must be between 0 and 1 (100%), "
                "got '> 3/2'",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: '> 1/0'}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': a fraction needs a denominator above 0, "
                "got '> 1/0'",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, "
            f"quorum: at least 0}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': 'at least' needs 1 server or more, got "
                "'at least 0'",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, quorum: '< 50%'}}\n",
            [
                "r.yaml:5:91: rule 'a': key 'quorum': expected a share such as \"> 50%\", "
                '">= 2/3" or "at least 3", got \'< 50%\'',
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, min_active: 0}}\n",
            [
                "r.yaml:5:95: rule 'a': key 'min_active': must be 1 or more, got 0",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, min_active: two}}\n",
            [
                "r.yaml:5:95: rule 'a': key 'min_active': expected a whole number, got a string",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: [a]}\n",
            [
                "r.yaml:5:68: rule 'a': key 'inhibited_by': a rule cannot inhibit itself",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: [b]}\n",
            [
                "r.yaml:5:68: rule 'a': key 'inhibited_by': no rule named 'b' in this file "
                "(known: none)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: b}\n",
            [
                "r.yaml:5:67: rule 'a': key 'inhibited_by': expected a list of one or more "
                "names, got a string",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: []}\n",
            [
                "r.yaml:5:67: rule 'a': key 'inhibited_by': expected a list of one or more "
                "names, got an empty list",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, equal: [service]}\n",
            [
                "r.yaml:5:60: rule 'a': key 'equal': only allowed with 'inhibited_by'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: [b], "
            "equal: [region]}\n"
            "  - {name: b, severity: HIGH, condition: value > 2}\n",
            [
                "r.yaml:5:80: rule 'a': key 'equal': only service and server can be compared, "
                "got 'region'",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, inhibited_by: [b, "
            "b]}\n"
            "  - {name: b, severity: HIGH, condition: value > 2}\n",
            [
                "r.yaml:5:71: rule 'a': key 'inhibited_by': 'b' is listed twice",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, {MAJORITY}, "
            f"inhibited_by: [b], equal: [server]}}\n"
            f"  - {{name: b, severity: HIGH, condition: value > 2}}\n",
            [
                "r.yaml:5:109: rule 'a': key 'equal': a majority rule cannot compare 'server' "
                "(its alerts have none)",
            ],
        ),
        (
            f"  - {{name: a, severity: HIGH, condition: value > 1, inhibited_by: [b], "
            f"equal: [service, server]}}\n"
            f"  - {{name: b, severity: HIGH, condition: value > 2, {MAJORITY}}}\n",
            [
                "r.yaml:5:79: rule 'a': key 'equal': cannot compare 'server' with 'b', a "
                "majority rule (its alerts have no server)",
            ],
        ),
        (
            "  - {name: a, severity: HIGH, condition: value > 1, "
            "inhibited_by: [b]}\n"
            "  - {name: b, severity: HIGH, condition: value > 2, "
            "inhibited_by: [c]}\n"
            "  - {name: c, severity: HIGH, condition: value > 3, "
            "inhibited_by: [a]}\n",
            [
                "r.yaml:5:67: rule 'a': key 'inhibited_by': rules inhibit each other in a "
                "cycle: 'a' -> 'b' -> 'c' -> 'a' (each inhibited by the next)",
            ],
        ),
    ],
)
def test_a_bad_control_is_named_with_line_and_column(rules: str, expected: list[str]) -> None:
    assert problems(HEADER + rules) == expected


def test_problems_across_rules_are_found_even_in_rules_with_other_problems() -> None:
    """A cycle through rules that are refused for other reasons is reported too."""
    assert problems(
        HEADER
        + "  - {name: a, severity: LOW, condition: value > 1, inhibited_by: [b, zz]}\n"
        + "  - {name: b, severity: HIGH, condition: value > 1, inhibited_by: [a]}\n"
    ) == [
        "r.yaml:5:25: rule 'a': key 'severity': unknown severity 'LOW' (known: MEDIUM, HIGH)",
        "r.yaml:5:66: rule 'a': key 'inhibited_by': rules inhibit each other in a cycle: "
        "'a' -> 'b' -> 'a' (each inhibited by the next)",
        "r.yaml:5:70: rule 'a': key 'inhibited_by': no rule named 'zz' in this file (known: 'b')",
    ]
