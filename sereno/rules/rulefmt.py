"""The rules file: YAML in, typed and validated `RuleSet` out (every problem found, with its
line and column, or none)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path

import yaml
from rich.color import Color, ColorParseError

from sereno.errors import RefusedFile
from sereno.rules.conditions import Condition, ConditionSyntaxError, parse_condition
from sereno.rules.summary import template_problem
from sereno.rules.yamlnodes import (
    BOOL,
    FLOAT,
    INT,
    STR,
    NodeReader,
    compose,
    keys,
    kind_name,
    read_text,
)


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
    "levels",
    "recover_when",
    "keep_firing_for",
    "on_missing",
    "missing_after",
    "flapping",
    "quorum",
    "min_active",
    "inhibited_by",
    "equal",
)
# A level's keys, which a rule with `levels:` cannot have of its own.
_LEVEL_KEYS = ("severity", "condition", "for")
_FLAPPING_KEYS = ("window", "high", "low")
# Keys about how a condition fires and recovers, which a silence rule has no use for: its
# alert has one cause (a server gone quiet) and resolves when the server sends again.
_NOT_ON_ABSENT = ("levels", "recover_when", "keep_firing_for")
# Keys about missing data, which a silence rule is about already.
_MISSING_DATA_KEYS = ("on_missing", "missing_after")
_MAJORITY_ONLY = ("quorum", "min_active")
_EQUAL_LABELS = ("service", "server")
_MIN_MISSING_AFTER = 60
_FLAPPING_WINDOW = (3, 100)
_QUORUM_SHARE = re.compile(
    r"^(?P<op>>=?)\s*(?:(?P<percent>\d+(?:\.\d+)?)\s*%|(?P<num>\d+)\s*/\s*(?P<den>\d+))$"
)
_QUORUM_COUNT = re.compile(r"^at\s+least\s+(?P<count>\d+)$")
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

    @cached_property
    def severity(self) -> Severity:
        """The least severe of its levels: the severity it fires at, at the least."""
        return self.levels[0].severity

    @cached_property
    def condition(self) -> Condition:
        """The condition of its least severe level (of its only one, for most rules)."""
        return self.levels[0].condition

    @cached_property
    def components(self) -> frozenset[str] | None:
        """The only components its conditions can match; None when any can."""
        found: set[str] = set()
        for condition in self.conditions:
            if condition.components is None:
                return None
            found |= condition.components
        return frozenset(found)

    @cached_property
    def conditions(self) -> tuple[Condition, ...]:
        """Every condition it evaluates: its levels', then its recovery condition."""
        recovery = (self.recover_when,) if self.recover_when is not None else ()
        return (*(level.condition for level in self.levels), *recovery)


def css_color(name: str | None) -> str | None:
    """A colour as rules files name it (`magenta`, `bright_yellow`, `#ff8800`), as
    `#rrggbb`; None if it is not one (or not given)."""
    if name is None:
        return None
    try:
        return Color.parse(name).get_truecolor().hex
    except ColorParseError:
        return None


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


def parse_quorum(text: str) -> Quorum:
    """A majority rule's quorum as rules files write it: "> 50%", ">= 2/3", "> 66.7%" or
    "at least 3"; raises ValueError saying what is wrong."""
    written = " ".join(text.split())
    count = _QUORUM_COUNT.match(written)
    if count is not None:
        needed = int(count["count"])
        if needed < 1:
            raise ValueError(f"'at least' needs 1 server or more, got {text!r}")
        return Quorum(text.strip(), count=needed)
    share = _QUORUM_SHARE.match(written)
    if share is None:
        raise ValueError(
            f'expected a share such as "> 50%", ">= 2/3" or "at least 3", got {text!r}'
        )
    if share["percent"] is not None:
        fraction = Fraction(share["percent"]) / 100
    elif int(share["den"]) == 0:
        raise ValueError(f"a fraction needs a denominator above 0, got {text!r}")
    else:
        fraction = Fraction(int(share["num"]), int(share["den"]))
    strict = share["op"] == ">"
    if fraction > 1:
        raise ValueError(f"a share must be between 0 and 1 (100%), got {text!r}")
    if strict and fraction == 1:
        raise ValueError(f"no number of servers is more than all of them, got {text!r}")
    return Quorum(text.strip(), share=fraction, strict=strict)


@dataclass(frozen=True)
class RuleSet:
    source: str
    severities: tuple[Severity, ...]
    rules: tuple[RuleSpec, ...]
    # what it was read from: the same rules are read from it in another process
    text: str = field(default="", compare=False, repr=False)

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
    text, unreadable = read_text(path)
    if text is None:
        raise RulesError([f"{path}: cannot read the rules file: {unreadable}"])
    return parse_rules(text, str(path))


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
    return replace(ruleset, text=text)


class _RulesReader(NodeReader):
    """Walks the rules file's node tree, building typed objects and collecting problems."""

    subject_kind = "rule"

    def __init__(self, source: str) -> None:
        super().__init__(source)
        # What the checks across rules need of each rule, gathered as they are read (even
        # from a rule with other problems), checked once all are.
        self._inhibitions: list[_Inhibition] = []
        self._majority_rules: set[str] = set()

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
        self._check_inhibitions(seen)
        return rules

    def _check_inhibitions(self, names: set[str]) -> None:
        """Each rule's `inhibited_by` names other rules of the file, whose alerts have the
        labels of its `equal`, and no rule ends up inhibiting itself through others."""
        for inhibition in self._inhibitions:
            for source, source_node in zip(inhibition.sources, inhibition.nodes, strict=True):
                if source not in names:
                    known = ", ".join(repr(name) for name in sorted(names - {inhibition.rule}))
                    self._problem(
                        source_node,
                        f"key 'inhibited_by': no rule named {source!r} in this file "
                        f"(known: {known or 'none'})",
                        inhibition.rule,
                    )
                elif "server" in inhibition.equal and source in self._majority_rules:
                    self._problem(
                        inhibition.equal_node,
                        f"key 'equal': cannot compare 'server' with {source!r}, a majority "
                        "rule (its alerts have no server)",
                        inhibition.rule,
                    )
        for cycle, node in _inhibition_cycles(self._inhibitions):
            path = " -> ".join(repr(name) for name in (*cycle, cycle[0]))
            self._problem(
                node,
                f"key 'inhibited_by': rules inhibit each other in a cycle: {path} (each "
                "inhibited by the next)",
                cycle[0],
            )

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
        fields = self._mapping(node, _RULE_KEYS, _required_rule_keys(keys(node)), subject=label)
        name = self._string(fields["name"], "name", label) if "name" in fields else None
        if name in seen:
            self._problem(fields["name"], "duplicate rule name: each rule needs its own", name)
        seen.add(name or "")
        description = self._optional_string(fields.get("description"), "description", label)
        absent = self._duration(fields.get("absent"), "absent", label)
        majority = self._majority(fields.get("majority"), label)
        if majority and "absent" in fields:
            self._problem(fields["absent"], "an 'absent' rule cannot be a majority rule", label)
        self._refuse_misplaced_keys(fields, label, bool(majority), absent is not None)
        levels = self._rule_levels(fields, severities, label, absent is not None)
        threshold = self._threshold(fields.get("threshold"), majority, node, label)
        summary = self._summary(fields.get("summary"), rule_kind(bool(majority), absent), label)
        recover_when = self._recover_when(fields.get("recover_when"), label)
        keep_firing_for = self._least_duration(
            fields.get("keep_firing_for"), "keep_firing_for", 1, label
        )
        on_missing = self._on_missing(fields.get("on_missing"), label)
        missing_after = self._least_duration(
            fields.get("missing_after"), "missing_after", _MIN_MISSING_AFTER, label
        )
        flapping = self._flapping(fields.get("flapping"), label)
        quorum = self._quorum(fields.get("quorum"), label)
        min_active = self._min_active(fields.get("min_active"), label)
        inhibited_by = self._inhibited_by(fields.get("inhibited_by"), name, label)
        equal = self._equal(fields, bool(majority), label)
        if name is not None:
            self._gather_inhibition(name, bool(majority), fields, inhibited_by, equal)
        if len(self._found) > before:
            return None
        assert name is not None and levels is not None
        return RuleSpec(
            name,
            description,
            levels,
            threshold,
            bool(majority),
            absent,
            summary,
            recover_when=recover_when,
            keep_firing_for=keep_firing_for or 0,
            on_missing=on_missing or DEFAULT_ON_MISSING,
            missing_after=missing_after or DEFAULT_MISSING_AFTER,
            flapping=flapping,
            quorum=quorum or DEFAULT_QUORUM,
            min_active=min_active or 1,
            inhibited_by=inhibited_by or (),
            equal=equal or ("service",),
        )

    def _gather_inhibition(
        self,
        name: str,
        majority: bool,
        fields: dict[str, yaml.Node],
        inhibited_by: tuple[str, ...] | None,
        equal: tuple[str, ...] | None,
    ) -> None:
        if majority:
            self._majority_rules.add(name)
        node = fields.get("inhibited_by")
        if inhibited_by is None or not isinstance(node, yaml.SequenceNode):
            return
        equal_node = fields.get("equal", node)
        self._inhibitions.append(
            _Inhibition(name, inhibited_by, tuple(node.value), node, equal or (), equal_node)
        )

    def _refuse_misplaced_keys(
        self, fields: dict[str, yaml.Node], rule: str, majority: bool, absent: bool
    ) -> None:
        """Keys that this kind of rule cannot have, or that clash with another of its keys."""
        if "levels" in fields:
            for key in _LEVEL_KEYS:
                if key in fields:
                    self._problem(
                        fields[key],
                        f"key {key!r}: not allowed with 'levels' (each level gives its own)",
                        rule,
                    )
        if absent:
            for key in _NOT_ON_ABSENT:
                if key in fields:
                    self._problem(
                        fields[key], f"key {key!r}: not allowed on an 'absent' rule", rule
                    )
            for key in _MISSING_DATA_KEYS:
                if key in fields:
                    self._problem(
                        fields[key],
                        f"key {key!r}: not allowed on an 'absent' rule, which is about missing "
                        "data itself (its 'absent' duration says how long)",
                        rule,
                    )
        if not majority:
            for key in _MAJORITY_ONLY:
                if key in fields:
                    self._problem(
                        fields[key], f"key {key!r}: only for majority rules (majority: true)", rule
                    )
        if "equal" in fields and "inhibited_by" not in fields:
            self._problem(fields["equal"], "key 'equal': only allowed with 'inhibited_by'", rule)

    def _rule_levels(
        self,
        fields: dict[str, yaml.Node],
        severities: dict[str, Severity],
        rule: str,
        absent: bool,
    ) -> tuple[Level, ...] | None:
        """The rule's levels, least severe first: its `levels:`, or the one level its own
        severity, condition and `for:` make."""
        if "levels" in fields:
            return self._levels(fields["levels"], severities, rule)
        severity = self._rule_severity(fields.get("severity"), severities, rule)
        condition = self._condition(fields.get("condition"), rule, absent)
        hold = self._duration(fields.get("for"), "for", rule)
        if severity is None or condition is None:
            return None
        return (Level(severity, condition, hold or 0),)

    def _levels(
        self, node: yaml.Node, severities: dict[str, Severity], rule: str
    ) -> tuple[Level, ...] | None:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            got = "an empty list" if isinstance(node, yaml.SequenceNode) else kind_name(node)
            self._problem(
                node,
                "key 'levels': expected a list of one or more levels, each a mapping with "
                f"severity, condition and for, got {got}",
                rule,
            )
            return None
        levels: list[Level] = []
        severity_nodes: dict[str, yaml.Node] = {}
        for position, level_node in enumerate(node.value, start=1):
            level = self._level(level_node, position, severities, rule)
            if level is None:
                continue
            name = level.severity.name
            if name in severity_nodes:
                self._problem(
                    _value_of(level_node, "severity"),
                    f"key 'levels': severity {name!r} has two levels: each level needs its own "
                    "severity",
                    rule,
                )
                continue
            severity_nodes[name] = level_node
            levels.append(level)
        if len(levels) < len(node.value):
            return None
        rank = {name: position for position, name in enumerate(severities)}
        return tuple(sorted(levels, key=lambda level: rank[level.severity.name]))

    def _level(
        self, node: yaml.Node, position: int, severities: dict[str, Severity], rule: str
    ) -> Level | None:
        if not isinstance(node, yaml.MappingNode):
            self._problem(
                node,
                f"key 'levels': level #{position} must be a mapping with severity, condition "
                f"and for, got {kind_name(node)}",
                rule,
            )
            return None
        before = len(self._found)
        fields = self._mapping(
            node, _LEVEL_KEYS, ("severity", "condition"), rule, f" in level #{position}"
        )
        severity = self._rule_severity(fields.get("severity"), severities, rule)
        condition = self._condition(fields.get("condition"), rule, absent=False)
        hold = self._duration(fields.get("for"), "for", rule)
        if len(self._found) > before or severity is None or condition is None:
            return None
        return Level(severity, condition, hold or 0)

    def _recover_when(self, node: yaml.Node | None, rule: str) -> Condition | None:
        if node is None:
            return None
        return self._condition(node, rule, absent=False, key="recover_when")

    def _least_duration(
        self, node: yaml.Node | None, key: str, least: int, rule: str
    ) -> int | None:
        """A duration of at least `least` seconds."""
        seconds = self._duration(node, key, rule)
        if node is not None and seconds is not None and seconds < least:
            self._problem(
                node,
                f"key {key!r}: must be at least {format_duration(least)}, got {node.value!r}",
                rule,
            )
            return None
        return seconds

    def _on_missing(self, node: yaml.Node | None, rule: str) -> OnMissing | None:
        if node is None:
            return None
        text = self._string(node, "on_missing", rule)
        if text is None:
            return None
        try:
            return OnMissing(text)
        except ValueError:
            choices = ", ".join(choice.value for choice in OnMissing)
            self._problem(node, f"key 'on_missing': expected one of {choices}, got {text!r}", rule)
            return None

    def _flapping(self, node: yaml.Node | None, rule: str) -> Flapping | None:
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            enabled = self._typed(
                node, (BOOL,), "true, false or a mapping", "flapping", rule, self._construct
            )
            return Flapping() if enabled else None
        what = " in 'flapping'"
        fields = self._mapping(node, _FLAPPING_KEYS, subject=rule, what=what)
        default = Flapping()
        window = self._window(fields.get("window"), rule)
        high = self._share(fields.get("high"), "flapping.high", rule)
        low = self._share(fields.get("low"), "flapping.low", rule)
        if window is None and "window" in fields:
            return None
        if (high is None and "high" in fields) or (low is None and "low" in fields):
            return None
        flapping = Flapping(
            window or default.window, _or(high, default.high), _or(low, default.low)
        )
        if not 0 < flapping.low < flapping.high <= 1:
            self._problem(
                fields.get("low", fields.get("high", node)),
                "key 'flapping': needs 0 < low < high <= 1, got low "
                f"{flapping.low:g} and high {flapping.high:g}",
                rule,
            )
            return None
        return flapping

    def _window(self, node: yaml.Node | None, rule: str) -> int | None:
        if node is None:
            return None
        window: int | None = self._typed(
            node, (INT,), "a whole number", "flapping.window", rule, self._construct
        )
        least, most = _FLAPPING_WINDOW
        if window is not None and not least <= window <= most:
            self._problem(
                node,
                f"key 'flapping.window': the number of evaluations, from {least} to {most}, "
                f"got {window}",
                rule,
            )
            return None
        return window

    def _share(self, node: yaml.Node | None, key: str, rule: str) -> float | None:
        if node is None:
            return None
        value = self._typed(node, (INT, FLOAT), "a number", key, rule, self._construct)
        return float(value) if value is not None else None

    def _quorum(self, node: yaml.Node | None, rule: str) -> Quorum | None:
        if node is None:
            return None
        text = self._string(node, "quorum", rule)
        if text is None:
            return None
        try:
            return parse_quorum(text)
        except ValueError as error:
            self._problem(node, f"key 'quorum': {error}", rule)
            return None

    def _min_active(self, node: yaml.Node | None, rule: str) -> int | None:
        if node is None:
            return None
        count: int | None = self._typed(
            node, (INT,), "a whole number", "min_active", rule, self._construct
        )
        if count is not None and count < 1:
            self._problem(node, f"key 'min_active': must be 1 or more, got {count}", rule)
            return None
        return count

    def _inhibited_by(
        self, node: yaml.Node | None, name: str | None, rule: str
    ) -> tuple[str, ...] | None:
        """The names listed; whether they name other rules of the file is checked once all
        rules are read."""
        names = self._string_list(node, "inhibited_by", rule)
        if names is None or node is None:
            return None
        assert isinstance(node, yaml.SequenceNode)
        for source, source_node in zip(names, node.value, strict=True):
            if source == name:
                self._problem(source_node, "key 'inhibited_by': a rule cannot inhibit itself", rule)
        return names

    def _equal(
        self, fields: dict[str, yaml.Node], majority: bool, rule: str
    ) -> tuple[str, ...] | None:
        node = fields.get("equal")
        labels = self._string_list(node, "equal", rule)
        if labels is None or node is None:
            return None
        assert isinstance(node, yaml.SequenceNode)
        for label, label_node in zip(labels, node.value, strict=True):
            if label not in _EQUAL_LABELS:
                choices = " and ".join(_EQUAL_LABELS)
                self._problem(
                    label_node, f"key 'equal': only {choices} can be compared, got {label!r}", rule
                )
                return None
        if majority and "server" in labels:
            self._problem(
                node,
                "key 'equal': a majority rule cannot compare 'server' (its alerts have none)",
                rule,
            )
            return None
        return labels

    def _string_list(self, node: yaml.Node | None, key: str, rule: str) -> tuple[str, ...] | None:
        """A non-empty list of distinct strings."""
        if node is None:
            return None
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            got = "an empty list" if isinstance(node, yaml.SequenceNode) else kind_name(node)
            self._problem(
                node, f"key {key!r}: expected a list of one or more names, got {got}", rule
            )
            return None
        names: list[str] = []
        for item in node.value:
            text = self._string(item, key, rule)
            if text is None:
                return None
            if text in names:
                self._problem(item, f"key {key!r}: {text!r} is listed twice", rule)
                return None
            names.append(text)
        return tuple(names)

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

    def _condition(
        self, node: yaml.Node | None, rule: str, absent: bool, key: str = "condition"
    ) -> Condition | None:
        if node is None and absent:
            return parse_condition(DEFAULT_ABSENT_CONDITION)
        text = self._string(node, key, rule) if node is not None else None
        if node is None or text is None:
            return None
        try:
            return parse_condition(text)
        except ConditionSyntaxError as error:
            self._problem(node, f"key {key!r}: {error}", rule)
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


def _required_rule_keys(given: set[str]) -> tuple[str, ...]:
    if "levels" in given:
        return ("name",)
    if "absent" in given:
        return ("name", "severity")
    return ("name", "severity", "condition")


def _value_of(node: yaml.Node, key: str) -> yaml.Node:
    """The value of `key` in a mapping node (the node itself if it has none), to point at."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key and isinstance(value_node, yaml.Node):
                return value_node
    return node


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class _Inhibition:
    """A rule's `inhibited_by` (and `equal`), with the nodes to point at."""

    rule: str
    sources: tuple[str, ...]
    nodes: tuple[yaml.Node, ...]
    node: yaml.Node
    equal: tuple[str, ...]
    equal_node: yaml.Node


def _inhibition_cycles(inhibitions: list[_Inhibition]) -> list[tuple[tuple[str, ...], yaml.Node]]:
    """The cycles of rules inhibited by rules ... inhibited by the first, each once, from the
    first of its rules in the file (a rule naming itself is refused on its own), with that
    rule's `inhibited_by` node."""
    sources = {i.rule: [s for s in i.sources if s != i.rule] for i in inhibitions}
    cycles: list[tuple[tuple[str, ...], yaml.Node]] = []
    in_a_cycle: set[str] = set()
    for inhibition in inhibitions:
        if inhibition.rule in in_a_cycle:
            continue
        cycle = _path_back(inhibition.rule, sources)
        if cycle is not None:
            cycles.append((cycle, inhibition.node))
            in_a_cycle.update(cycle)
    return cycles


def _path_back(start: str, sources: dict[str, list[str]]) -> tuple[str, ...] | None:
    """A path of inhibitions from `start` back to itself, if there is one (depth first)."""
    stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
    visited: set[str] = set()
    while stack:
        name, path = stack.pop()
        for source in reversed(sources.get(name, [])):
            if source == start:
                return path
            if source not in visited:
                visited.add(source)
                stack.append((source, (*path, source)))
    return None
