"""The rules file: YAML in, typed and validated `RuleSet` out (every problem found, with its
line and column, or none)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from importlib import resources
from pathlib import Path

import yaml
from rich.color import Color, ColorParseError

from sereno.errors import RefusedFile
from sereno.rules.conditions import Condition, ConditionSyntaxError, parse_condition
from sereno.rules.summary import template_problem
from sereno.rules.yamlnodes import BOOL, FLOAT, INT, STR, NodeReader, compose, keys, kind_name


class RulesError(RefusedFile):
    """A rules file that cannot be used; carries every problem found, one per line."""

    what = "rules file"


DEFAULT_RULES_NAME = "rules.yaml"

_SEVERITY_KEYS = ("description", "color")
_RULE_KEYS = (
    "name",
    "description",
    "severity",
    "condition",
    "threshold",
    "majority",
    "for",
    "absent",
    "summary",
)
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
DEFAULT_ABSENT_CONDITION = "active"


@dataclass(frozen=True)
class Severity:
    name: str
    description: str
    color: str | None


@dataclass(frozen=True)
class Level:
    """One severity of a rule: the alert is at this level while `condition` holds (and has
    held for `hold` seconds, its `for:`)."""

    severity: Severity
    condition: Condition
    hold: int = 0


@dataclass(frozen=True)
class Quorum:
    """How many of a service's active servers a majority rule needs matching: more than (or,
    not `strict`, at least) the `share` of them, or, with `count`, at least that many."""

    text: str
    share: Fraction = Fraction(1, 2)
    strict: bool = True
    count: int | None = None

    def met(self, matched: int, active: int) -> bool:
        if matched == 0 or active == 0:
            return False
        if self.count is not None:
            return matched >= self.count
        if self.strict:
            return matched * self.share.denominator > self.share.numerator * active
        return matched * self.share.denominator >= self.share.numerator * active


DEFAULT_QUORUM = Quorum("> 50%")


@dataclass(frozen=True)
class Flapping:
    """Nagios' flap detection: over the last `window` evaluations, the weighted share of
    changes between firing and not; flapping from `high` up, stable again below `low`."""

    window: int = 21
    high: float = 0.5
    low: float = 0.25


class OnMissing(str, Enum):
    """What an open alert becomes when its server (or service) sends none of its rule's
    components for `missing_after`."""

    KEEP = "keep"
    RESOLVE = "resolve"
    ALERT = "alert"


DEFAULT_ON_MISSING = OnMissing.ALERT
DEFAULT_MISSING_AFTER = 300


@dataclass(frozen=True)
class RuleSpec:
    """One alerting rule. `threshold` is shown as written; the conditions decide.

    `levels` are its severities, least severe first, each with its condition and `for:` (a
    rule without `levels:` has one). `absent`, when set, makes it a silence rule: servers
    that sent no event matching the condition for that long. `summary` is the template of its
    notifications' one-line text. The other fields are the alert's controls, as the rules
    file's keys of the same names describe them.
    """

    name: str
    description: str
    levels: tuple[Level, ...]
    threshold: str | None
    majority: bool
    absent: int | None = None
    summary: str | None = None
    recover_when: Condition | None = None
    keep_firing_for: int = 0
    on_missing: OnMissing = DEFAULT_ON_MISSING
    missing_after: int = DEFAULT_MISSING_AFTER
    flapping: Flapping | None = None
    quorum: Quorum = DEFAULT_QUORUM
    min_active: int = 1
    inhibited_by: tuple[str, ...] = ()
    equal: tuple[str, ...] = ("service",)

    @property
    def kind(self) -> str:
        return rule_kind(self.majority, self.absent)

    @property
    def severity(self) -> Severity:
        """The least severe of its levels: the severity it fires at, at the least."""
        return self.levels[0].severity

    @property
    def condition(self) -> Condition:
        """The condition of its least severe level (of its only one, for most rules)."""
        return self.levels[0].condition

    @property
    def components(self) -> frozenset[str] | None:
        """The only components its conditions can match; None when any can."""
        found: set[str] = set()
        for condition in self.conditions:
            if condition.components is None:
                return None
            found |= condition.components
        return frozenset(found)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every condition it evaluates: its levels', then its recovery condition."""
        recovery = (self.recover_when,) if self.recover_when is not None else ()
        return (*(level.condition for level in self.levels), *recovery)


def rule_kind(majority: bool, absent: int | None) -> str:
    if absent is not None:
        return "absent"
    return "majority" if majority else "per-server"


def format_duration(seconds: int) -> str:
    """A duration as rules files write it: 5m, 90s, 1h30m."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


def parse_duration(text: str) -> int | None:
    """Seconds in a duration such as 90s, 5m, 1h or 1h30m; None if it is not one."""
    found = _DURATION.match(text.strip())
    if not found or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return 3600 * hours + 60 * minutes + seconds


@dataclass(frozen=True)
class RuleSet:
    source: str
    severities: tuple[Severity, ...]
    rules: tuple[RuleSpec, ...]

    @property
    def fields(self) -> frozenset[str]:
        """Every event field some condition reads."""
        return frozenset().union(
            *(condition.fields for rule in self.rules for condition in rule.conditions)
        )


def default_rules_text() -> str:
    conf = resources.files("sereno").joinpath("conf")
    return conf.joinpath(DEFAULT_RULES_NAME).read_text(encoding="utf-8")


def load_default_rules() -> RuleSet:
    return parse_rules(default_rules_text(), f"<packaged {DEFAULT_RULES_NAME}>")


def load_rules(path: str | Path) -> RuleSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError([f"{path}: cannot read the rules file: {_os_reason(error)}"]) from None
    return parse_rules(text, str(path))


def _os_reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return "not valid UTF-8 text"


def parse_rules(text: str, source: str) -> RuleSet:
    """Validate a rules document; raise `RulesError` listing every problem found."""
    root, not_yaml = compose(text, source)
    if not_yaml is not None:
        raise RulesError([not_yaml])
    reader = _RulesReader(source)
    ruleset = reader.read(root)
    if reader.problems:
        raise RulesError(reader.problems)
    assert ruleset is not None
    return ruleset


class _RulesReader(NodeReader):
    """Walks the rules file's node tree, building typed objects and collecting problems."""

    subject_kind = "rule"

    def read(self, root: yaml.Node | None) -> RuleSet | None:
        if not isinstance(root, yaml.MappingNode):
            got = kind_name(root)
            self._problem(
                root, f"the rules file must be a mapping with 'severities' and 'rules', got {got}"
            )
            return None
        top = self._mapping(root, ("severities", "rules"), required=("severities", "rules"))
        severities = self._severities(top.get("severities"))
        rules = self._rules(top.get("rules"), {s.name: s for s in severities})
        return RuleSet(self._source, tuple(severities), tuple(rules))

    def _severities(self, node: yaml.Node | None) -> list[Severity]:
        if node is None:
            return []
        if not isinstance(node, yaml.MappingNode) or not node.value:
            self._problem(node, "'severities' must be a non-empty mapping of severity names")
            return []
        return [s for s in map(self._severity, node.value) if s is not None]

    def _severity(self, entry: tuple[yaml.Node, yaml.Node]) -> Severity | None:
        name_node, body = entry
        name = self._string(name_node, "severities")
        if name is None:
            return None
        what = f" in severity {name!r}"
        if not isinstance(body, yaml.MappingNode):
            self._problem(body, f"severity {name!r} must be a mapping with description and color")
            return None
        fields = self._mapping(body, _SEVERITY_KEYS, what=what)
        description = self._optional_string(fields.get("description"), "description")
        color = self._color(fields.get("color"), name)
        return Severity(name, description or "", color)

    def _color(self, node: yaml.Node | None, severity: str) -> str | None:
        if node is None:
            return None
        color = self._string(node, "color")
        if color is None:
            return None
        try:
            Color.parse(color)
        except ColorParseError:
            self._problem(
                node,
                f"severity {severity!r}: unknown color {color!r} "
                "(use a name such as red or bright_yellow, a number 0-255, or #rrggbb)",
            )
            return None
        return color

    def _rules(self, node: yaml.Node | None, severities: dict[str, Severity]) -> list[RuleSpec]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self._problem(node, "'rules' must be a list of rules")
            return []
        rules: list[RuleSpec] = []
        seen: set[str] = set()
        for position, rule_node in enumerate(node.value, start=1):
            rule = self._rule(rule_node, position, severities, seen)
            if rule is not None:
                rules.append(rule)
        return rules

    def _rule(
        self, node: yaml.Node, position: int, severities: dict[str, Severity], seen: set[str]
    ) -> RuleSpec | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, f"rule #{position} must be a mapping of rule keys")
            return None
        name_node = next((v for k, v in node.value if k.value == "name"), None)
        label = f"#{position}"
        if isinstance(name_node, yaml.ScalarNode) and name_node.tag == STR:
            label = str(name_node.value)
        before = len(self._found)
        required = (
            ("name", "severity") if "absent" in keys(node) else ("name", "severity", "condition")
        )
        fields = self._mapping(node, _RULE_KEYS, required, subject=label)
        name = self._string(fields["name"], "name", label) if "name" in fields else None
        if name in seen:
            self._problem(fields["name"], "duplicate rule name: each rule needs its own", name)
        seen.add(name or "")
        description = self._optional_string(fields.get("description"), "description", label)
        severity = self._rule_severity(fields.get("severity"), severities, label)
        absent = self._duration(fields.get("absent"), "absent", label)
        condition = self._condition(fields.get("condition"), label, absent is not None)
        majority = self._majority(fields.get("majority"), label)
        if majority and "absent" in fields:
            self._problem(fields["absent"], "an 'absent' rule cannot be a majority rule", label)
        threshold = self._threshold(fields.get("threshold"), majority, node, label)
        hold = self._duration(fields.get("for"), "for", label)
        summary = self._summary(fields.get("summary"), rule_kind(bool(majority), absent), label)
        if len(self._found) > before:
            return None
        assert name is not None and severity is not None and condition is not None
        return RuleSpec(
            name,
            description,
            (Level(severity, condition, hold or 0),),
            threshold,
            bool(majority),
            absent,
            summary,
        )

    def _summary(self, node: yaml.Node | None, kind: str, rule: str) -> str | None:
        text = self._string(node, "summary", rule) if node is not None else None
        problem = template_problem(text, kind) if text is not None else None
        if problem is not None:
            self._problem(node, f"key 'summary': {problem}", rule)
            return None
        return text

    def _duration(self, node: yaml.Node | None, key: str, rule: str) -> int | None:
        if node is None:
            return None
        text = self._typed(node, (STR, INT), "a duration", key, rule, lambda n: str(n.value))
        seconds = parse_duration(text) if text is not None else None
        if text is not None and (seconds is None or (key == "absent" and seconds == 0)):
            self._problem(
                node, f"key {key!r}: expected a duration such as 90s, 5m or 1h, got {text!r}", rule
            )
        return seconds

    def _rule_severity(
        self, node: yaml.Node | None, severities: dict[str, Severity], rule: str
    ) -> Severity | None:
        name = self._string(node, "severity", rule) if node is not None else None
        if node is None or name is None:
            return None
        if name not in severities:
            known = ", ".join(severities) or "none defined"
            self._problem(node, f"key 'severity': unknown severity {name!r} (known: {known})", rule)
            return None
        return severities[name]

    def _condition(self, node: yaml.Node | None, rule: str, absent: bool) -> Condition | None:
        if node is None and absent:
            return parse_condition(DEFAULT_ABSENT_CONDITION)
        text = self._string(node, "condition", rule) if node is not None else None
        if node is None or text is None:
            return None
        try:
            return parse_condition(text)
        except ConditionSyntaxError as error:
            self._problem(node, f"key 'condition': {error}", rule)
            return None

    def _majority(self, node: yaml.Node | None, rule: str) -> bool | None:
        if node is None:
            return False
        return self._typed(node, (BOOL,), "true or false", "majority", rule, self._construct)

    def _threshold(
        self, node: yaml.Node | None, majority: bool | None, rule_node: yaml.Node, rule: str
    ) -> str | None:
        if node is None:
            if majority:
                self._problem(
                    rule_node, "majority rules need a 'threshold' to show in their alerts", rule
                )
            return None
        return self._typed(
            node,
            (STR, INT, FLOAT),
            "a number or a string",
            "threshold",
            rule,
            lambda n: str(n.value),
        )
