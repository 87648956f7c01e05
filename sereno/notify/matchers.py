"""Label matchers as Alertmanager and amtool write them, so that a silence can say which alerts
it covers: `service=InboxService`, `server=~"inbox_0[12]"`, `severity!=LOW`, `name!~'re'`.

A matcher is a value (a frozen msgspec struct) and can be stored as it is. Its semantics are
Alertmanager's: a regex must match the whole label value (it is anchored as `^(?:REGEX)$`),
and a label an alert does not have matches as the empty string, so `server=""` and
`server!~".+"` both match alerts without a server. The name `rule` reads the label
`alertname`, which is what a notice calls its rule.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Literal, get_args

import msgspec

from sereno.errors import SerenoError

Operator = Literal["=", "!=", "=~", "!~"]
OPERATORS: tuple[Operator, ...] = get_args(Operator)
REGEX_OPERATORS: frozenset[str] = frozenset({"=~", "!~"})
NEGATED_OPERATORS: frozenset[str] = frozenset({"!=", "!~"})

# What a user may call a label when it differs from the label's name in a notice.
LABEL_ALIASES: Mapping[str, str] = {"rule": "alertname"}

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR_CHARS = "=!~<>"
_OPERATOR_RUN = re.compile(f"[{re.escape(_OPERATOR_CHARS)}]+")
_OPERATOR_OF_TEXT: Mapping[str, Operator] = {op: op for op in OPERATORS}
_EXPECTED_OPERATORS = "expected =, !=, =~ or !~"
_EXPECTED_FORM = 'expected a label, an operator (=, !=, =~, !~) and a value, as in service="Inbox"'
_NAME_RULE = "letters, digits and _, not starting with a digit"


class MatcherError(SerenoError):
    """A matcher that cannot be read or could never work: the message names it and says why."""


class Matcher(msgspec.Struct, frozen=True):
    """One condition on one label: `name op value`. Checked when built (and when decoded), so a
    stored matcher always has a valid name, operator and, for =~ and !~, regex."""

    name: str
    op: Operator
    value: str

    def __post_init__(self) -> None:
        problem = _problem_of(self.name, self.op, self.value)
        if problem is not None:
            raise MatcherError(f"matcher {describe(self)!r}: {problem}")

    @property
    def label(self) -> str:
        """The label this matcher reads in a notice's labels."""
        return LABEL_ALIASES.get(self.name, self.name)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels satisfy this matcher; an absent label reads as ""."""
        given = labels.get(self.label, "")
        if self.op in REGEX_OPERATORS:
            found = _anchored(self.value).fullmatch(given) is not None
        else:
            found = given == self.value
        return found != (self.op in NEGATED_OPERATORS)


def matches(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether the labels satisfy every matcher."""
    return all(matcher.matches(labels) for matcher in matchers)


def describe(matcher: Matcher) -> str:
    """The canonical text of a matcher, which `parse_matcher` reads back: `name=~"value"`."""
    quoted = matcher.value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{matcher.name}{matcher.op}"{quoted}"'


def parse_matcher(text: str) -> Matcher:
    """A matcher as the CLI or amtool writes it: a label name, an operator, and a value either
    bare, in single quotes (taken as is) or in double quotes (where \\" and \\\\ stand for " and
    \\; any other backslash is kept, so that regexes such as "inbox_\\d+" read as written).
    Raises MatcherError naming the matcher and what is wrong."""
    if not text.strip():
        raise MatcherError(f"empty matcher: {_EXPECTED_FORM}")
    try:
        name, op, value = _split(text)
    except _Refused as refused:
        raise MatcherError(f"matcher {text!r}: {refused}") from None
    problem = _problem_of(name, op, value)
    if problem is not None:
        raise MatcherError(f"matcher {text!r}: {problem}")
    return Matcher(name, op, value)


class _Refused(Exception):
    """What is wrong with a matcher's text, before it is known which matcher it is."""


def _split(text: str) -> tuple[str, Operator, str]:
    operator = _OPERATOR_RUN.search(text)
    if operator is None:
        raise _Refused(f"no operator; {_EXPECTED_OPERATORS}")
    name = text[: operator.start()].strip()
    if not name:
        raise _Refused("no label name before the operator")
    if not _LABEL_NAME.fullmatch(name):
        raise _Refused(f"bad label name {name!r}: {_NAME_RULE}")
    op = _OPERATOR_OF_TEXT.get(operator.group())
    if op is None:
        # A value that starts with one of these characters must be quoted: "==x" is a typo
        # far more often than the value "=x".
        raise _Refused(f"unknown operator {operator.group()!r}; {_EXPECTED_OPERATORS}")
    return name, op, _value_of(text[operator.end() :].strip())


def _value_of(written: str) -> str:
    if written.startswith('"'):
        return _double_quoted(written)
    if written.startswith("'"):
        closing = written.find("'", 1)
        if closing < 0:
            raise _Refused("unterminated ' quote")
        _nothing_after(written, closing)
        return written[1:closing]
    if '"' in written or "'" in written:
        raise _Refused("quote inside an unquoted value; quote the whole value")
    return written


def _double_quoted(written: str) -> str:
    value: list[str] = []
    position = 1
    while position < len(written):
        char = written[position]
        if char == '"':
            _nothing_after(written, position)
            return "".join(value)
        if char == "\\" and position + 1 < len(written) and written[position + 1] in '"\\':
            value.append(written[position + 1])
            position += 2
            continue
        value.append(char)
        position += 1
    raise _Refused('unterminated " quote')


def _nothing_after(written: str, closing: int) -> None:
    rest = written[closing + 1 :].strip()
    if rest:
        raise _Refused(f"unexpected {rest!r} after the closing quote")


def _problem_of(name: str, op: str, value: str) -> str | None:
    """What makes name, op and value not a matcher, or None if they are one."""
    if not _LABEL_NAME.fullmatch(name):
        return f"bad label name {name!r}: {_NAME_RULE}"
    if op not in OPERATORS:
        return f"unknown operator {op!r}; {_EXPECTED_OPERATORS}"
    if op in REGEX_OPERATORS:
        try:
            # On its own first, so that "a)|(b" is refused rather than balanced by the anchors.
            re.compile(value)
            _anchored(value)
        except re.error as error:
            return f"invalid regular expression: {error}"
    return None


@functools.lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    """A matcher's regex, compiled once per pattern: every alert is matched against every
    silence, and a pattern is used over and over."""
    return re.compile(f"^(?:{pattern})$")
