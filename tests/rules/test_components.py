"""Which components a condition can match: skipping the others must change nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conditions import EVENTS, EXPRESSIONS, STRINGS

from sereno.events.schema import Event
from sereno.rules.conditions import ConditionError, ConditionSyntaxError, parse_condition


@pytest.mark.parametrize(
    ("text", "components"),
    [
        ('component == "Load5mAvg" and value > 4.0 and active', {"Load5mAvg"}),
        ('value > 4.0 and component == "Load5mAvg"', {"Load5mAvg"}),
        ('"Disk" == component', {"Disk"}),
        ('component in ["Disk", "Load", 3]', {"Disk", "Load"}),
        ('component == "A" or component == "B"', {"A", "B"}),
        ('component == "A" and component == "B"', set()),
        ('component == "A" or value > 3', None),
        ('x > 3 and component == "A"', None),  # x > 3 can fail, so every event is evaluated
        ('not component == "A"', None),
        ("value > 3", None),
    ],
)
def test_the_components_a_condition_can_match(text: str, components: set[str] | None) -> None:
    expected = None if components is None else frozenset(components)
    assert parse_condition(text).components == expected


def _restricted(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, EXPRESSIONS).map(lambda t: f"({t[0]}) and ({t[1]})"),
        st.tuples(EXPRESSIONS, children).map(lambda t: f"({t[0]}) and ({t[1]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]}) or ({t[1]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]}) and ({t[1]})"),
    )


RESTRICTED = st.recursive(
    st.one_of(
        STRINGS.map(lambda text: f"component == {text}"),
        st.lists(STRINGS, max_size=3).map(lambda texts: f"component in [{', '.join(texts)}]"),
    ),
    _restricted,
    max_leaves=5,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=RESTRICTED, events=st.lists(EVENTS, min_size=1, max_size=4))
def test_events_of_other_components_neither_match_nor_fail(text: str, events: list[Event]) -> None:
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError:
        return
    if condition.components is None:
        return
    for event in events:
        if event.component not in condition.components:
            try:
                matched = condition.interpret(event)
            except ConditionError as error:
                pytest.fail(f"{text!r} failed on a {event.component} event: {error}")
            assert matched is False, (text, event)
