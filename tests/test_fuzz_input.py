"""Arbitrary bytes and JSON to every reader of user input: the HTTP body decoder, the events
file reader and the rules loader. Each gives a result or its own clean error, never another
exception. Derandomized: the same examples on every run."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sereno.errors import SerenoError
from sereno.events.body import BodyError, Decoded, decode_body
from sereno.events.reader import EventReader, RecordError
from sereno.rules.rulefmt import RuleSet, load_rules

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
EXTREME_NUMBERS = st.sampled_from(
    [1e308, -1e308, 2**64, 2**63, -(2**63) - 1, 10**400, -1e20, 5e-324, -0.0, 0, 1476057600]
)
NUMBER_LIKE = st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e999", "0x10", ""])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | EXTREME_NUMBERS
    | NUMBER_LIKE
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(["server", "service", "component", "value", "timestamp", "active", "x"])
EVENT_LIKE = st.dictionaries(FIELDS, SCALARS | JSON_VALUES, max_size=7).map(
    lambda fields: {
        "server": "a",
        "service": "S",
        "component": "Load5mAvg",
        "value": 1,
        "timestamp": 1476057600,
        "active": True,
        **fields,
    }
)
NESTED = st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth)
VERY_NESTED = st.integers(900, 3000).map(lambda depth: "[" * depth + "1" + "]" * depth)


def as_json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)  # NaN and Infinity: not JSON, as agents may send


def records(reader_safe: bool) -> st.SearchStrategy[bytes]:
    """A body or file: an array of records, JSON Lines of records, or bytes of any kind."""
    one = EVENT_LIKE | JSON_VALUES
    record = st.one_of(one.map(as_json), NESTED)
    array = st.lists(record, max_size=5).map(lambda items: "[" + ",".join(items) + "]")
    lines = st.lists(record, max_size=5).map("\n".join)
    texts = array | lines | record
    if not reader_safe:
        texts |= VERY_NESTED
    return texts.map(str.encode) | st.binary(max_size=200)


@FUZZ
@given(
    body=records(reader_safe=False),
    content_type=st.sampled_from(
        [None, "application/json", "application/x-ndjson", "application/jsonl", "text/plain"]
    ),
    encoding=st.sampled_from([None, "identity", "gzip", "br"]),
    compress=st.booleans(),
    truncate=st.integers(0, 30),
)
def test_the_body_decoder_answers_or_refuses_cleanly(
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    compress: bool,
    truncate: int,
) -> None:
    if encoding == "gzip" and compress:
        body = gzip.compress(body)
        body = body[: len(body) - truncate] if truncate < 5 else body
    try:
        decoded = decode_body(body, content_type, encoding, max_bytes=1 << 16)
    except BodyError as error:
        assert error.status in {400, 413, 415}
        assert "\n" not in str(error)
    else:
        assert isinstance(decoded, Decoded)
        assert all(rejected.index >= 0 for rejected in decoded.rejected)


@FUZZ
@given(data=records(reader_safe=True))
def test_the_file_reader_reads_or_rejects_records_cleanly(data: bytes) -> None:
    errors: list[RecordError] = []
    reader = EventReader(io.BufferedReader(io.BytesIO(data)), "events.json", errors.append)
    try:
        events = reader.read_all()
    except SerenoError:
        return
    assert isinstance(events, list)
    assert all(error.location.startswith("events.json") for error in errors)


def test_a_file_nested_too_deeply_is_a_clean_error() -> None:
    data = b"[" * 1000 + b"]" * 1000
    errors: list[RecordError] = []
    reader = EventReader(io.BufferedReader(io.BytesIO(data)), "events.json", errors.append)
    assert reader.read_all() == []
    assert [str(error) for error in errors] == [
        "events.json: not valid JSON: nested too deeply; the rest of the input was skipped"
    ]


RULE_KEYS = st.sampled_from(
    ["name", "severity", "condition", "for", "majority", "threshold", "summary", "absent", "x"]
)
RULES_DOCUMENTS = st.fixed_dictionaries(
    {
        "severities": st.one_of(
            JSON_VALUES, st.dictionaries(st.sampled_from(["HIGH", "LOW"]), JSON_VALUES)
        ),
        "rules": st.one_of(JSON_VALUES, st.lists(st.dictionaries(RULE_KEYS, JSON_VALUES))),
    }
).map(lambda document: yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        RULES_DOCUMENTS.map(str.encode),
        JSON_VALUES.map(lambda value: yaml.safe_dump(value).encode()),
    )
)
def test_the_rules_loader_loads_or_refuses_cleanly(tmp_path: Path, content: bytes) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(content)
    try:
        ruleset = load_rules(rules)
    except SerenoError as error:
        assert str(error)
    else:
        assert isinstance(ruleset, RuleSet)
