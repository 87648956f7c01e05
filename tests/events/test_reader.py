"""Decoding events: both formats, told apart by content, and per-record errors."""

from __future__ import annotations

import io

import pytest

from sereno.events.reader import EventReader, RecordError
from sereno.events.schema import Event, event_type

from conftest import event, json_lines


def read(data: bytes, name: str = "in.json") -> tuple[list[tuple[str, Event]], list[str]]:
    errors: list[RecordError] = []
    reader = EventReader(io.BufferedReader(io.BytesIO(data)), name, errors.append)
    events = [(reader.last_location(), decoded) for decoded in reader]
    return events, [str(error) for error in errors]


GOOD = event(value=3.2)


def test_json_lines_are_read_with_line_numbers() -> None:
    events, errors = read(b"\n" + json_lines(GOOD, event(value=95)), "in.jsonl")
    assert [location for location, _ in events] == ["in.jsonl:2", "in.jsonl:3"]
    assert events[0][1] == Event(**GOOD)
    assert events[1][1].value == 95 and isinstance(events[1][1].value, int)
    assert errors == []


def test_a_json_array_is_told_apart_by_content_not_name() -> None:
    data = (
        b'  \n[{"server":"s","service":"v","component":"c","value":1,"timestamp":2,"active":false}]'
    )
    events, errors = read(data, "events.jsonl")
    assert [location for location, _ in events] == ["events.jsonl[0]"]
    assert errors == []


def test_a_byte_order_mark_is_ignored() -> None:
    events, _ = read(b"\xef\xbb\xbf" + json_lines(GOOD))
    assert len(events) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"server": "a"', "in.json:2: not valid JSON: input data was truncated"),
        ('{"server" "a"}', "in.json:2: not valid JSON: expected ':' at byte 11 of the record"),
        ("[1, 2]", "in.json:2: expected a JSON object, got an array"),
        ('"text"', "in.json:2: expected a JSON object, got a string"),
        (
            '{"server":"","service":"v","component":"c","value":1,"timestamp":2,"active":true}',
            "in.json:2: field 'server': expected a non-empty string",
        ),
        (
            '{"service":"v","component":"c","value":1,"timestamp":2,"active":true}',
            "in.json:2: field 'server': missing",
        ),
        (
            '{"server":"s","service":"v","component":"c","value":true,"timestamp":2,"active":true}',
            "in.json:2: field 'value': expected a finite number, got a boolean",
        ),
        (
            '{"server":"s","service":"v","component":"c","value":1e999,"timestamp":2,"active":true}',
            "in.json:2: field 'value': expected a finite number, got a number out of range",
        ),
        (
            '{"server":"s","service":"v","component":"c","value":1,"timestamp":"2","active":true}',
            "in.json:2: field 'timestamp': expected a number of Unix seconds, got a string",
        ),
        (
            '{"server":"s","service":"v","component":"c","value":1,"timestamp":2,"active":1}',
            "in.json:2: field 'active': expected true or false, got an integer",
        ),
    ],
)
def test_a_bad_line_is_reported_and_the_others_are_read(line: str, message: str) -> None:
    events, errors = read(json_lines(GOOD, line, GOOD))
    assert len(events) == 2
    assert errors == [message]


def test_invalid_utf8_is_a_bad_record() -> None:
    events, errors = read(json_lines(GOOD) + b'{"server":"\xff"}\n' + json_lines(GOOD))
    assert len(events) == 2
    assert errors == ["in.json:2: not valid UTF-8 text"]


def test_bad_array_elements_are_reported_by_index() -> None:
    data = b"[" + json_lines(GOOD).strip() + b', {"server": 1}, ' + json_lines(GOOD).strip() + b"]"
    events, errors = read(data)
    assert [location for location, _ in events] == ["in.json[0]", "in.json[2]"]
    assert errors == ["in.json[1]: field 'server': expected a non-empty string, got an integer"]


def test_a_truncated_array_keeps_the_elements_before_the_break() -> None:
    data = b"[\n" + json_lines(GOOD).strip() + b",\n" + json_lines(GOOD)[:40]
    events, errors = read(data)
    assert len(events) == 1
    assert errors == [
        "in.json:3:1: malformed JSON array: truncated inside the element starting here; "
        "the rest of the input was skipped"
    ]


def test_a_broken_array_is_reported_where_it_breaks() -> None:
    data = b"[\n" + json_lines(GOOD).strip() + b",\n" + json_lines(GOOD).strip() + b" oops]"
    events, errors = read(data)
    assert len(events) == 2
    assert errors == [
        "in.json:3:142: malformed JSON array: expected ',' or ']' after an array element; "
        "the rest of the input was skipped"
    ]


def test_empty_inputs_have_no_events_and_no_errors() -> None:
    assert read(b"") == ([], [])
    assert read(b" \n\n") == ([], [])
    assert read(b"[]") == ([], [])


def test_extra_fields_read_by_rules_are_kept() -> None:
    errors: list[RecordError] = []
    data = json_lines(event(region="eu", rack=7), GOOD)
    stream = io.BufferedReader(io.BytesIO(data))
    reader = EventReader(stream, "in", errors.append, event_type({"region", "value"}))
    first, second = list(reader)
    assert first.region == "eu"  # type: ignore[attr-defined]
    assert not hasattr(first, "rack")
    assert second.region is __import__("msgspec").UNSET  # type: ignore[attr-defined]
