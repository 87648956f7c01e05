"""Reading in batches: every event keeps its line, whatever the size of the chunks read."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sereno.events.reader
from sereno.cli.diagnostics import StrictStop
from sereno.events.reader import EventReader, RecordError
from sereno.events.schema import Event

from conftest import event, json_lines

GOOD = json_lines(event()).rstrip(b"\n")
LINES = [GOOD, b"", b"   ", GOOD.replace(b"1.0", b'"x"'), b"{", GOOD + b"\r", b'"text"']


def located(
    data: bytes, stream: io.BufferedReader | None = None
) -> tuple[list[tuple[str, Event]], list[str]]:
    errors: list[RecordError] = []
    stream = stream or io.BufferedReader(io.BytesIO(data))
    reader = EventReader(stream, "in", errors.append)
    found = [
        (batch.location(index), item)
        for batch in reader.batches()
        for index, item in enumerate(batch.events)
    ]
    return found, [str(error) for error in errors]


def expected(lines: list[bytes]) -> tuple[list[tuple[str, Event]], list[str]]:
    """What reading the lines one by one gives, by the definition of each kind of line."""
    found, errors = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.rstrip() == GOOD:
            found.append((f"in:{number}", Event(**event())))
        else:
            errors.append(f"in:{number}")
    return found, errors


class Trickle(io.RawIOBase):
    """A pipe that has at most `most` bytes ready at a time."""

    def __init__(self, data: bytes, most: int) -> None:
        self._data, self._most = data, most

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self._most, len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(LINES), max_size=30),
    st.integers(1, 400),
    st.booleans(),
    st.integers(1, 300),
)
def test_chunks_of_any_size_give_every_event_its_line(
    lines: list[bytes], chunk_bytes: int, final_newline: bool, ready: int
) -> None:
    data = b"\n".join([*lines, b""] if final_newline else lines)
    original = sereno.events.reader.CHUNK_BYTES
    sereno.events.reader.CHUNK_BYTES = chunk_bytes
    try:
        found, errors = located(data)
        trickled = located(data, io.BufferedReader(Trickle(data, ready)))
    finally:
        sereno.events.reader.CHUNK_BYTES = original
    want_found, want_errors = expected(lines)
    assert found == want_found
    assert [error.split(": ", 1)[0] for error in errors] == want_errors
    assert trickled == (found, errors)


def test_good_events_before_a_bad_one_are_handed_on_before_it_is_reported() -> None:
    data = json_lines(event(), event(timestamp=1476057601)) + b"{\n" + json_lines(event())
    handed_on: list[Event] = []

    def stop(error: RecordError) -> None:
        raise StrictStop(str(error))

    reader = EventReader(io.BufferedReader(io.BytesIO(data)), "in", stop)
    with pytest.raises(StrictStop):
        for batch in reader.batches():
            handed_on.extend(batch.events)
    assert len(handed_on) == 2
