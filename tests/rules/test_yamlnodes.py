from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import sereno
from sereno.rules import yamlnodes

SHIPPED_RULES = Path(sereno.__file__).parent / "conf" / "rules.yaml"
NON_ASCII = 'name: "disque plein à 90 %"\nservers: [é, {ü: 😀}]\nnote: |\n  ligne\n  zwei\n'


def _nodes(node: yaml.Node) -> Iterator[tuple[object, ...]]:
    start, end = node.start_mark, node.end_mark
    text = node.value if isinstance(node.value, str) else None
    yield node.tag, start.line, start.column, end.line, end.column, text
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _nodes(key)
            yield from _nodes(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _nodes(item)


@pytest.mark.parametrize("text", [SHIPPED_RULES.read_text(encoding="utf-8"), NON_ASCII])
def test_the_fast_parser_gives_the_nodes_and_places_of_pyyamls_own(text: str) -> None:
    fast, problem = yamlnodes.compose(text, "rules.yaml")
    assert problem is None and fast is not None
    own = yaml.compose(text, Loader=yaml.SafeLoader)
    assert own is not None
    assert list(_nodes(fast)) == list(_nodes(own))


def test_a_document_libyaml_refuses_is_worded_by_pyyaml() -> None:
    # libyaml refuses a directive of a later YAML version; PyYAML only warns of it
    node, problem = yamlnodes.compose("%YAML 1.3\n---\nrules: []\n", "rules.yaml")
    assert problem is None and isinstance(node, yaml.MappingNode)
    node, problem = yamlnodes.compose("rules: [\n", "rules.yaml")
    assert node is None
    assert problem == (
        "rules.yaml:2:1: not valid YAML: expected the node content, but found '<stream end>'"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "rules:\n  - name: a\x07b\n",
            "rules.yaml:2:12: not valid YAML: unacceptable character #x0007: "
            "special characters are not allowed",
        ),
        (  # libyaml cannot even encode it
            "rules: a\ud800\n",
            "rules.yaml:1:9: not valid YAML: unacceptable character #xd800: "
            "special characters are not allowed",
        ),
    ],
)
def test_an_unacceptable_character_is_told_in_one_line_with_its_place(
    text: str, problem: str
) -> None:
    assert yamlnodes.compose(text, "rules.yaml") == (None, problem)


def test_nesting_deeper_than_either_parser_goes_is_told_where() -> None:
    node, problem = yamlnodes.compose("rules: " + "[" * 5000, "rules.yaml")
    assert node is None
    assert problem == "rules.yaml:1:1007: not valid YAML: exceeded maximum nesting depth"


@pytest.mark.parametrize(
    "text", [SHIPPED_RULES.read_text(encoding="utf-8"), NON_ASCII, "", "a: [1, 2.5, true, ~]"]
)
def test_a_document_loads_as_safe_load_gives_it(text: str) -> None:
    assert yamlnodes.load(text, "t.yaml") == (yaml.safe_load(text), None)


def test_a_document_as_deep_as_libyaml_goes_loads() -> None:
    document, problem = yamlnodes.load("a: " + "[" * 999 + "]" * 999, "t.yaml")
    assert problem is None and isinstance(document, dict)


def test_a_file_is_read_or_its_reason_given(tmp_path: Path) -> None:
    good, latin1, folder = tmp_path / "good.yaml", tmp_path / "latin1.yaml", tmp_path / "dir"
    good.write_text("rules: []\n", encoding="utf-8")
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    folder.mkdir()
    assert yamlnodes.read_text(good) == ("rules: []\n", None)
    assert yamlnodes.read_text(latin1) == (None, "not valid UTF-8 text")
    assert yamlnodes.read_text(tmp_path / "missing.yaml") == (None, "No such file or directory")
    assert yamlnodes.read_text(folder) == (None, "Is a directory")
