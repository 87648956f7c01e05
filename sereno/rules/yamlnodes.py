"""Reading a YAML file as a node tree, so that every problem can be reported with its line
and column; all problems are collected and the file is refused as a whole if there is any."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

STR = "tag:yaml.org,2002:str"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
KIND_NAMES = {
    STR: "a string",
    BOOL: "true or false",
    INT: "a number",
    FLOAT: "a number",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:map": "a mapping",
    "tag:yaml.org,2002:seq": "a list",
}

_T = TypeVar("_T")


# libyaml's parser where PyYAML was built with it: the same nodes and marks, some
# thirty times faster than PyYAML's own (which every run pays for the rules it reads)
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_text(path: str | Path) -> tuple[str | None, str | None]:
    """A YAML file's text, or why it cannot be read (None, the reason)."""
    try:
        return Path(path).read_text(encoding="utf-8"), None
    except OSError as error:
        return None, error.strerror or str(error)
    except UnicodeDecodeError:
        return None, "not valid UTF-8 text"


def compose(text: str, source: str) -> tuple[yaml.Node | None, str | None]:
    """The document's node tree, or the one-line problem that makes it not YAML."""
    try:
        return yaml.compose(text, Loader=_FAST_LOADER), None
    # libyaml raises UnicodeEncodeError of its own; PyYAML's parser, if it is the one,
    # RecursionError
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        refused: Exception = error  # PyYAML's own parser words the problem, as it always has
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), None
    except RecursionError:  # nested deeper than PyYAML's parser goes: libyaml said where
        return None, _problem(refused, text, source, "nested too deeply")
    except yaml.YAMLError as error:
        return None, _problem(error, text, source)


def load(text: str, source: str) -> tuple[Any, str | None]:
    """The document as plain values, as `yaml.safe_load` gives them, or the one-line problem
    that makes it not YAML."""
    node, problem = compose(text, source)
    if node is None:
        return None, problem
    try:  # built in a loop, not by recursion: as deep as the parsers go
        return yaml.constructor.SafeConstructor().construct_document(node), None
    except yaml.YAMLError as error:  # a tag it does not know, say
        return None, _problem(error, text, source)


def _problem(error: Exception, text: str, source: str, otherwise: str = "") -> str:
    """A YAML error in one line, where in the file first."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {error.problem}"
    if isinstance(error, yaml.reader.ReaderError):  # a control character: its str is two lines
        line = text.count("\n", 0, error.position) + 1
        column = error.position - text.rfind("\n", 0, error.position)
        character = f"#x{error.character:04x}" if isinstance(error.character, int) else ""
        problem = f"unacceptable character {character}: {error.reason}"
        return f"{source}:{line}:{column}: not valid YAML: {problem}"
    if isinstance(error, yaml.MarkedYAMLError):
        return f"{source}: not valid YAML: {error.problem}"
    return f"{source}: not valid YAML: {otherwise or error}"


def kind_name(node: yaml.Node | None) -> str:
    return KIND_NAMES.get(node.tag, "something else") if node is not None else "empty"


def keys(node: yaml.MappingNode) -> set[str]:
    return {str(key.value) for key, _ in node.value}


class NodeReader:
    """Walks a node tree, building typed objects and collecting problems; each problem may
    name its subject (a rule, a receiver) by its `subject_kind`."""

    subject_kind = ""

    def __init__(self, source: str) -> None:
        self._source = source
        self._constructor = yaml.constructor.SafeConstructor()
        self._found: list[tuple[int, int, str]] = []

    @property
    def problems(self) -> list[str]:
        """Every problem found, in the order of the file."""
        return [message for *_, message in sorted(self._found)]

    def _problem(self, node: yaml.Node | None, message: str, subject: str | None = None) -> None:
        where = self._source
        line = column = 0
        if node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            where += f":{line}:{column}"
        about = f" {self.subject_kind} {subject!r}:" if subject is not None else ""
        self._found.append((line, column, f"{where}:{about} {message}"))

    def _mapping(
        self,
        node: yaml.MappingNode,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        subject: str | None = None,
        what: str = "",
    ) -> dict[str, yaml.Node]:
        """The mapping's values by key, reporting unknown, duplicate and missing keys."""
        entries: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if key_node.tag == STR else str(key_node.value)
            if key in entries:
                self._problem(key_node, f"key {key!r} appears twice{what}", subject)
            elif key not in allowed:
                known = ", ".join(allowed)
                self._problem(key_node, f"unknown key {key!r}{what} (known keys: {known})", subject)
            else:
                entries[key] = value_node
        for key in required:
            if key not in entries:
                self._problem(node, f"missing required key {key!r}{what}", subject)
        return entries

    def _typed(
        self,
        node: yaml.Node,
        tags: tuple[str, ...],
        expected: str,
        key: str,
        subject: str | None,
        convert: Callable[[yaml.Node], _T],
    ) -> _T | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            got = KIND_NAMES.get(node.tag, "something else")
            self._problem(node, f"key {key!r}: expected {expected}, got {got}", subject)
            return None
        return convert(node)

    def _string(self, node: yaml.Node, key: str, subject: str | None = None) -> str | None:
        text = self._typed(node, (STR,), "a string", key, subject, lambda n: str(n.value))
        if text is not None and not text.strip():
            self._problem(node, f"key {key!r}: must not be empty", subject)
            return None
        return text

    def _optional_string(self, node: yaml.Node | None, key: str, subject: str | None = None) -> str:
        if node is None:
            return ""
        return self._typed(node, (STR,), "a string", key, subject, lambda n: str(n.value)) or ""

    def _construct(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)
