"""Conditions: compiled evaluation must agree with rule-engine's, value for value."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sereno.events.schema import Event, event_type
from sereno.rules.conditions import Condition, ConditionError, ConditionSyntaxError, parse_condition

EventWithExtras = event_type(["x", "y"])


def make_event(**fields: Any) -> Event:
    base: dict[str, Any] = {
        "server": "inbox_production01",
        "service": "InboxService",
        "component": "Load5mAvg",
        "value": 1.0,
        "timestamp": 1476057600,
        "active": True,
    }
    return EventWithExtras(**{**base, **fields})


def outcome(evaluate: Any, event: Event) -> tuple[str, bool | None]:
    try:
        return ("ok", evaluate(event))
    except ConditionError:
        return ("error", None)


def assert_agree(condition: Condition, event: Event) -> None:
    assert outcome(condition.matches, event) == outcome(condition.interpret, event), (
        condition.text,
        event,
    )


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ('component == "DiskUsedPercentage" and value > 0.9 and active', {}, False),
        ('component == "Load5mAvg" and value > 4.0 and active', {"value": 4.0}, False),
        ('component == "Load5mAvg" and value > 4.0 and active', {"value": 4.01}, True),
        ('component == "Load5mAvg" and value > 4.0 and active', {"value": 5}, True),
        (
            'component == "Load5mAvg" and value > 4.0 and active',
            {"value": 5, "active": False},
            False,
        ),
        ("value >= 0.9", {"value": 0.9}, True),
        ("value > 0.9", {"value": 0.9}, False),
        # rule-engine compares decimals: 0.1 + 0.8 is exactly 0.9, unlike in floats
        ("value == 0.1 + 0.8", {"value": 0.9}, True),
        ("value * 100 > 90", {"value": 0.91}, True),
        ('server =~ "inbox_.*"', {}, True),
        ('server =~ "production"', {}, False),
        ('server =~~ "production"', {}, True),
        ('server !~ "reporting"', {}, True),
        ('service in ["InboxService", "ReportPDFGenerator"]', {}, True),
        ('"inbox" in server', {}, True),
        ("value in [1, 2]", {"value": 2}, True),
        ("active == 1", {}, False),  # different types are never equal
        ("x == null", {}, True),  # a missing extra field is null
        ('x == "eu"', {"x": "eu"}, True),
        ("not active ? value > 0 : value < 0", {}, False),
        ("-value < 0", {}, True),
        ("value // 1 == 1 and value % 1 == 0", {"value": 1.0}, True),
    ],
)
def test_conditions_evaluate_as_rule_engine_says(
    text: str, fields: dict[str, Any], expected: bool
) -> None:
    condition = parse_condition(text)
    assert condition.compiled
    event = make_event(**fields)
    assert condition.matches(event) is expected
    assert condition.interpret(event) is expected


@pytest.mark.parametrize(
    "text",
    [
        "server.length > 3",
        "x[0] == 1",
        "$now > d'2000-01-01'",
        "[v for v in [1, 2]] == [1, 2]",
        "x ?? 1 == 1",
        "x =~ server",
    ],
)
def test_conditions_outside_the_compiled_subset_fall_back_to_rule_engine(text: str) -> None:
    condition = parse_condition(text)
    assert not condition.compiled
    assert_agree(condition, make_event(x=[1]))


def test_a_field_holding_a_list_is_evaluated_by_rule_engine() -> None:
    condition = parse_condition("x == [1, 2] or x in [3]")
    assert_agree(condition, make_event(x=[1, 2]))
    assert condition.matches(make_event(x=[1, 2])) is True


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("x > 3", {"x": "a string"}),
        ("x > 3", {}),  # null is not ordered against a number
        ("value / x > 1", {"x": 0}),
        ('x =~ "a"', {"x": 3}),
        ('"a" in x', {"x": 3}),
        ("x + 1 > 2", {"x": True}),
    ],
)
def test_evaluation_errors_are_condition_errors(text: str, fields: dict[str, Any]) -> None:
    condition = parse_condition(text)
    event = make_event(**fields)
    with pytest.raises(ConditionError):
        condition.matches(event)
    with pytest.raises(ConditionError):
        condition.interpret(event)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("value >", "syntax error at the end of the condition"),
        ("value > > 3", "syntax error at position 9 (near '>')"),
        ('component == "x" andd value', "syntax error at position 18 (near 'andd')"),
        ('value > "x"', "data type mismatch"),
        ('server =~ "("', "invalid regular expression"),
    ],
)
def test_bad_conditions_are_refused_with_a_position(text: str, message: str) -> None:
    with pytest.raises(ConditionSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_condition(text)


def test_fields_lists_what_a_condition_reads() -> None:
    condition = parse_condition('component == "Load5mAvg" and region != "test"')
    assert condition.fields == {"component", "region"}


# --- property: compiled and rule-engine evaluation agree ------------------------------------

NUMBERS = st.one_of(
    st.sampled_from(["0", "1", "4", "4.0", "0.9", "-2.5", "0.1", "1e20", "3.14159", "2e-3"]),
    st.sampled_from(["123456789012345678901234567890", "9007199254740993", "0.30000000000000004"]),
)
STRINGS = st.sampled_from(['"a"', '"inbox"', '""', '"Load5mAvg"', '"inbox_production01"'])
FIELDS = st.sampled_from(["value", "timestamp", "active", "server", "component", "x", "y"])
ATOMS = st.one_of(FIELDS, NUMBERS, STRINGS, st.sampled_from(["true", "false", "null"]))
BINARY = ["==", "!=", ">", ">=", "<", "<=", "and", "or", "+", "-", "*", "/", "//", "%", "**"]
REGEX = st.sampled_from(['"inbox.*"', '"a"', '"^$"', '".*01"'])


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        children.map(lambda c: f"(not {c})"),
        children.map(lambda c: f"(-{c})"),
        st.tuples(children, st.sampled_from(["=~", "=~~", "!~", "!~~"]), REGEX).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(children, st.lists(st.one_of(NUMBERS, STRINGS), max_size=3)).map(
            lambda t: f"({t[0]} in [{', '.join(t[1])}])"
        ),
        st.tuples(children, children).map(lambda t: f"({t[0]} in {t[1]})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _compound, max_leaves=8)

VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0.9, 4.0, 0.1, 0.30000000000000004, 9007199254740993, 1e20]),
)
EXTRAS = st.one_of(
    st.none(),
    st.booleans(),
    VALUES,
    st.sampled_from(["a", "inbox", "", "Load5mAvg", "inbox_production01"]),
    st.lists(st.integers(-3, 3), max_size=2),
)
EVENTS = st.builds(
    make_event,
    server=st.sampled_from(["inbox_production01", "a", "reporting_pdf02"]),
    component=st.sampled_from(["Load5mAvg", "DiskUsedPercentage"]),
    value=VALUES,
    timestamp=st.one_of(st.integers(0, 2**33), st.floats(0, 2**33)),
    active=st.booleans(),
    x=st.one_of(st.just(msgspec.UNSET), EXTRAS),
    y=st.one_of(st.just(msgspec.UNSET), EXTRAS),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=EXPRESSIONS, events=st.lists(EVENTS, min_size=1, max_size=4))
def test_compiled_conditions_agree_with_rule_engine(text: str, events: list[Event]) -> None:
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError:
        return  # rule-engine refuses it at load: nothing to evaluate
    for event in events:
        assert_agree(condition, event)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["value", "timestamp", "x"]),
    operator=st.sampled_from(["==", "!=", ">", ">=", "<", "<="]),
    literal=NUMBERS,
    event=EVENTS,
)
def test_threshold_comparisons_are_compiled_and_agree(
    field: str, operator: str, literal: str, event: Event
) -> None:
    condition = parse_condition(f"{field} {operator} {literal}")
    assert condition.compiled
    assert_agree(condition, event)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=EXPRESSIONS, events=st.lists(EVENTS, max_size=6))
def test_selecting_from_a_list_is_matching_each_event_in_turn(
    text: str, events: list[Event]
) -> None:
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError:
        return
    expected, expected_errors = [], []
    for event in events:
        try:
            if condition.matches(event):
                expected.append(event)
        except ConditionError as error:
            expected_errors.append((event, str(error)))
    errors: list[tuple[Event, str]] = []
    selected = condition.select(events, lambda event, error: errors.append((event, str(error))))
    assert [id(event) for event in selected] == [id(event) for event in expected]
    assert [(id(event), text) for event, text in errors] == [
        (id(event), text) for event, text in expected_errors
    ]
