"""The rules file: YAML in, typed and validated `RuleSet` out.

The file is read as a YAML node tree so that every problem can be reported with its line and
column; all problems are collected and the file is refused as a whole if there is any.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.color import Color, ColorParseError

from sereno.conditions import Condition, ConditionSyntaxError, parse_condition
from sereno.errors import RulesError

DEFAULT_RULES_NAME = "rules.yaml"

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_KIND_NAMES = {
    _STR: "a string",
    _BOOL: "true or false",
    _INT: "a number",
    _FLOAT: "a number",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:map": "a mapping",
    "tag:yaml.org,2002:seq": "a list",
}

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
)
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
DEFAULT_ABSENT_CONDITION = "active"


@dataclass(frozen=True)
class Severity:
    name: str
    description: str
    color: str | None


@dataclass(frozen=True)
class RuleSpec:
    """One alerting rule. `threshold` is shown as written; the condition decides.

    `hold` is how long (seconds) the condition must hold before the alert fires (`for:`);
    `absent`, when set, makes it a silence rule: servers that sent no event matching the
    condition for that long.
    """

    name: str
    description: str
    severity: Severity
    condition: Condition
    threshold: str | None
    majority: bool
    hold: int = 0
    absent: int | None = None

    @property
    def kind(self) -> str:
        if self.absent is not None:
            return "absent"
        return "majority" if self.majority else "per-server"


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
        return frozenset().union(*(rule.condition.fields for rule in self.rules))


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
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise RulesError([f"{where}: not valid YAML: {error.problem}"]) from None
    except yaml.YAMLError as error:
        raise RulesError([f"{source}: not valid YAML: {error}"]) from None
    reader = _RulesReader(source)
    ruleset = reader.read(root)
    if reader.problems:
        raise RulesError(reader.problems)
    assert ruleset is not None
    return ruleset


_T = TypeVar("_T")


def _keys(node: yaml.MappingNode) -> set[str]:
    return {str(key.value) for key, _ in node.value}


class _RulesReader:
    """Walks the YAML node tree, building typed objects and collecting problems."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._constructor = yaml.constructor.SafeConstructor()
        self._found: list[tuple[int, int, str]] = []

    @property
    def problems(self) -> list[str]:
        """Every problem found, in the order of the file."""
        return [message for *_, message in sorted(self._found)]

    def _problem(self, node: yaml.Node | None, message: str, rule: str | None = None) -> None:
        where = self._source
        line = column = 0
        if node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            where += f":{line}:{column}"
        subject = f" rule {rule!r}:" if rule is not None else ""
        self._found.append((line, column, f"{where}:{subject} {message}"))

    def read(self, root: yaml.Node | None) -> RuleSet | None:
        if not isinstance(root, yaml.MappingNode):
            got = _KIND_NAMES.get(root.tag, "something else") if root is not None else "empty"
            self._problem(
                root, f"the rules file must be a mapping with 'severities' and 'rules', got {got}"
            )
            return None
        top = self._mapping(root, ("severities", "rules"), required=("severities", "rules"))
        severities = self._severities(top.get("severities"))
        rules = self._rules(top.get("rules"), {s.name: s for s in severities})
        return RuleSet(self._source, tuple(severities), tuple(rules))

    def _mapping(
        self,
        node: yaml.MappingNode,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        rule: str | None = None,
        what: str = "",
    ) -> dict[str, yaml.Node]:
        """The mapping's values by key, reporting unknown, duplicate and missing keys."""
        entries: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == _STR else str(key_node.value)
            if key in entries:
                self._problem(key_node, f"key {key!r} appears twice{what}", rule)
            elif key not in allowed:
                known = ", ".join(allowed)
                self._problem(key_node, f"unknown key {key!r}{what} (known keys: {known})", rule)
            else:
                entries[key] = value_node
        for key in required:
            if key not in entries:
                self._problem(node, f"missing required key {key!r}{what}", rule)
        return entries

    def _typed(
        self,
        node: yaml.Node,
        tags: tuple[str, ...],
        expected: str,
        key: str,
        rule: str | None,
        convert: Callable[[yaml.Node], _T],
    ) -> _T | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            got = _KIND_NAMES.get(node.tag, "something else")
            self._problem(node, f"key {key!r}: expected {expected}, got {got}", rule)
            return None
        return convert(node)

    def _string(self, node: yaml.Node, key: str, rule: str | None = None) -> str | None:
        text = self._typed(node, (_STR,), "a string", key, rule, lambda n: str(n.value))
        if text is not None and not text.strip():
            self._problem(node, f"key {key!r}: must not be empty", rule)
            return None
        return text

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

    def _optional_string(self, node: yaml.Node | None, key: str, rule: str | None = None) -> str:
        if node is None:
            return ""
        return self._typed(node, (_STR,), "a string", key, rule, lambda n: str(n.value)) or ""

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
        if isinstance(name_node, yaml.ScalarNode) and name_node.tag == _STR:
            label = str(name_node.value)
        before = len(self._found)
        required = (
            ("name", "severity") if "absent" in _keys(node) else ("name", "severity", "condition")
        )
        fields = self._mapping(node, _RULE_KEYS, required, rule=label)
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
        if len(self._found) > before:
            return None
        assert name is not None and severity is not None and condition is not None
        return RuleSpec(
            name, description, severity, condition, threshold, bool(majority), hold or 0, absent
        )

    def _duration(self, node: yaml.Node | None, key: str, rule: str) -> int | None:
        if node is None:
            return None
        text = self._typed(node, (_STR, _INT), "a duration", key, rule, lambda n: str(n.value))
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
        return self._typed(node, (_BOOL,), "true or false", "majority", rule, self._construct)

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
            (_STR, _INT, _FLOAT),
            "a number or a string",
            "threshold",
            rule,
            lambda n: str(n.value),
        )

    def _construct(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)
