"""Reading events from JSON arrays and JSON Lines, record by record.

Every record is validated on its own; a bad one becomes a `RecordError` naming where it was,
the field at fault and why, and never stops the records around it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol

import msgspec

from sereno.events.schema import Event
from sereno.events.times import ANY_TIME, EventTimes, Timestamps

_timestamp = attrgetter("timestamp")

_EXPECTATIONS = {
    "server": "a non-empty string",
    "service": "a non-empty string",
    "component": "a non-empty string",
    "value": "a finite number",
    "timestamp": "a number of Unix seconds",
    "active": "true or false",
}
_JSON_KINDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
}


@dataclass(frozen=True)
class RecordError:
    """A record that was rejected: where it was, which field, and why.

    `position` is its line number (JSON Lines) or array index; None when the input itself is
    malformed (a JSON array that breaks off), not one record.
    """

    location: str
    field: str | None
    reason: str
    position: int | None = None

    def __str__(self) -> str:
        if self.field is None:
            return f"{self.location}: {self.reason}"
        return f"{self.location}: field {self.field!r}: {self.reason}"


ErrorHandler = Callable[[RecordError], None]

# what decoding a record may raise; RecursionError: JSON nested deeper than the decoder goes
_UNDECODABLE = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
NESTED_TOO_DEEPLY = "not valid JSON: nested too deeply"

_AT_FIELD = re.compile(r"^(?P<message>.*) - at `\$\.(?P<field>\w+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`$")
_GOT = re.compile(r"got `(?P<kind>\w+)`")
_INT_BOUND = re.compile(r"^Expected `int` [<>]= ")
_BYTE = re.compile(r"\(byte (?P<offset>\d+)\)")


def _explain(error: Exception) -> tuple[str | None, str]:
    """Turn a msgspec decoding error into (field, reason) worded for the user."""
    text = str(error)
    # msgspec before 0.23 leaves bad UTF-8 in a string to Python's decoding; 0.23 and later
    # find it itself
    if isinstance(error, UnicodeDecodeError) or text.startswith("Invalid UTF-8"):
        return None, "not valid UTF-8 text"
    if isinstance(error, RecursionError):
        return None, NESTED_TOO_DEEPLY
    if not isinstance(error, msgspec.ValidationError):
        detail = text.removeprefix("JSON is malformed: ")
        detail = _BYTE.sub(lambda m: f"at byte {int(m['offset']) + 1} of the record", detail)
        return None, f"not valid JSON: {detail[:1].lower()}{detail[1:]}"
    missing = _MISSING.match(text)
    if missing:
        return missing["field"], "missing"
    at_field = _AT_FIELD.match(text)
    field = at_field["field"] if at_field else None
    got = _GOT.search(text)
    got_text = f", got {_JSON_KINDS.get(got['kind'], got['kind'])}" if got else ""
    if field is None:
        return None, f"expected a JSON object{got_text}"
    if "out of range" in text or _INT_BOUND.search(text):
        got_text = ", got a number out of range"
    return field, f"expected {_EXPECTATIONS.get(field, 'a valid value')}{got_text}"


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _whole_lines(stream: ByteStream) -> Iterator[bytes]:
    """The stream in chunks of whole lines (the last may lack its newline), each as much as
    one read gives (up to `CHUNK_BYTES` from a file; what has come, from a pipe)."""
    parts: list[bytes] = []  # of a line not ended yet
    while data := stream.read1(CHUNK_BYTES):
        end = data.rfind(b"\n") + 1
        if end == 0:
            parts.append(data)
            continue
        parts.append(data[:end])
        yield b"".join(parts)
        parts = [data[end:]] if end < len(data) else []
    if parts:
        yield b"".join(parts)


class ByteStream(Protocol):
    """What the reader needs of its input: a buffered binary stream it can peek into."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...

    def read1(self, size: int = ..., /) -> bytes: ...

    def readline(self, size: int | None = ..., /) -> bytes: ...


CHUNK_BYTES = 1 << 20


class EventBatch:
    """Consecutive good events of one input, each with its place: a line or an array index."""

    __slots__ = ("events", "in_array", "positions", "source", "timestamps")

    def __init__(
        self, events: list[Event], positions: Sequence[int], source: str, in_array: bool
    ) -> None:
        self.events = events
        self.positions = positions
        self.source = source
        self.in_array = in_array
        self.timestamps: Timestamps | None = None
        """The events' timestamps, once the reader has looked at them."""

    def location(self, index: int) -> str:
        """Where `events[index]` came from: `FILE:LINE` or `FILE[INDEX]`."""
        return record_location(self.source, self.positions[index], self.in_array)


def record_location(source: str, position: int, in_array: bool) -> str:
    return f"{source}[{position}]" if in_array else f"{source}:{position}"


class EventReader:
    """Reads events from a binary stream holding a JSON array or JSON Lines.

    The format is told by content: a first non-blank byte of `[` means a JSON array (held in
    memory whole); anything else is read as JSON Lines, a chunk of lines at a time, so memory
    follows the window being evaluated and not the size of the file.

    Events come in batches (`batches()`), or one by one (iterating over the reader).
    """

    def __init__(
        self,
        stream: ByteStream,
        name: str,
        on_error: ErrorHandler,
        decode_as: type[Event] = Event,
        times: EventTimes = ANY_TIME,
    ) -> None:
        self._stream = stream
        self.name = name
        self._on_error = on_error
        self._times = times
        self._decoder = msgspec.json.Decoder(decode_as)
        self._array_decoder = msgspec.json.Decoder(list[decode_as])  # type: ignore[valid-type]
        self.bytes_read = 0
        self.records_read = 0
        self._last: tuple[EventBatch, int] | None = None

    def last_location(self) -> str:
        """Where the event most recently yielded came from (`FILE:LINE` or `FILE[INDEX]`)."""
        if self._last is None:
            return self.name
        batch, index = self._last
        return batch.location(index)

    def __iter__(self) -> Iterator[Event]:
        for batch in self.batches():
            for index, event in enumerate(batch.events):
                self._last = (batch, index)
                yield event

    def read_all(self) -> list[Event]:
        """Every good event of the input, in order; bad records go to `on_error`."""
        return [event for batch in self.batches() for event in batch.events]

    def batches(self) -> Iterator[EventBatch]:
        """The input's good events, in order, in batches; bad records go to `on_error`."""
        blank_lines = self._skip_leading_blanks()
        if self._stream.peek(1)[:1] == b"[":
            decoded = self._read_array(self._stream.read(), first_line_number=blank_lines + 1)
        else:
            decoded = self._read_lines(self._stream, first_line_number=blank_lines + 1)
        return self._screened(decoded)

    def _screened(self, batches: Iterator[EventBatch]) -> Iterator[EventBatch]:
        """The batches, without the events whose timestamp cannot be taken (reported)."""
        lowest = max(0.0, self._times.evaluated_before)
        latest = self._times.latest
        for batch in batches:
            timestamps = list(map(_timestamp, batch.events))
            if not timestamps:
                yield batch
                continue
            told = Timestamps.of(timestamps)
            if lowest <= told.oldest and told.newest <= latest:
                batch.timestamps = told  # the windows' too
                yield batch
            else:
                yield from self._screen(batch)

    def _screen(self, batch: EventBatch) -> Iterator[EventBatch]:
        events: list[Event] = []
        positions: list[int] = []
        for event, position in zip(batch.events, batch.positions, strict=True):
            problem = self._times.problem(event.timestamp)
            if problem is None:
                events.append(event)
                positions.append(position)
                continue
            if events:  # handed on before the report, which may stop the run (--strict)
                yield EventBatch(events, positions, batch.source, batch.in_array)
                events, positions = [], []
            where = record_location(batch.source, position, batch.in_array)
            self._on_error(RecordError(where, "timestamp", problem, position))
        if events:
            yield EventBatch(events, positions, batch.source, batch.in_array)

    def _skip_leading_blanks(self) -> int:
        """Consume a byte-order mark and blank space before the first record; count the lines."""
        if self._stream.peek(3)[:3] == b"\xef\xbb\xbf":
            self.bytes_read += len(self._stream.read(3))
        newlines = 0
        while True:
            ahead = self._stream.peek(1)
            blank = len(ahead) - len(ahead.lstrip())
            if blank == 0:
                return newlines
            newlines += ahead.count(b"\n", 0, blank)
            self.bytes_read += len(self._stream.read(blank))

    def _read_lines(self, stream: ByteStream, first_line_number: int) -> Iterator[EventBatch]:
        line_number = first_line_number
        for chunk in _whole_lines(stream):
            self.bytes_read += len(chunk)
            # what removing them takes off, not `count`: that goes a byte at a time
            newlines = len(chunk) - len(chunk.replace(b"\n", b""))
            lines = newlines + (not chunk.endswith(b"\n"))
            yield from self._decode_chunk(chunk, line_number, lines)
            line_number += lines

    def _decode_chunk(
        self, chunk: bytes, first_line_number: int, lines: int
    ) -> Iterator[EventBatch]:
        """A chunk of `lines` whole lines, decoded at once; line by line if it has a bad
        record or a blank line (which decoding at once would skip without a word)."""
        try:
            events = self._decoder.decode_lines(chunk)
        except _UNDECODABLE:
            events = []
        if len(events) != lines:
            # a bad record, or a blank line, somewhere in the chunk: take it line by line
            numbered = enumerate(chunk.split(b"\n"), first_line_number)
            records = ((number, line) for number, line in numbered if line.strip())
            yield from self._decode_each(records, in_array=False)
            return
        self.records_read += lines
        positions = range(first_line_number, first_line_number + lines)
        yield EventBatch(events, positions, self.name, in_array=False)

    def _decode_each(
        self, records: Iterable[tuple[int, bytes | msgspec.Raw]], in_array: bool
    ) -> Iterator[EventBatch]:
        """Decode records one by one, reporting the bad ones.

        The good events before a bad record are handed on before it is reported, so that they
        are evaluated even when the report stops the run (`--strict`).
        """
        events: list[Event] = []
        positions: list[int] = []
        for position, raw in records:
            self.records_read += 1
            try:
                events.append(self._decoder.decode(raw))
            except _UNDECODABLE as error:
                if events:
                    yield EventBatch(events, positions, self.name, in_array)
                    events, positions = [], []
                field, reason = _explain(error)
                where = record_location(self.name, position, in_array)
                self._on_error(RecordError(where, field, reason, position))
                continue
            positions.append(position)
        if events:
            yield EventBatch(events, positions, self.name, in_array)

    def _read_array(self, data: bytes, first_line_number: int) -> Iterator[EventBatch]:
        try:
            events: list[Event] = self._array_decoder.decode(data)
        except _UNDECODABLE:
            pass  # a bad element, or a bad array: see which
        else:
            self.bytes_read += len(data)
            self.records_read += len(events)
            if events:
                yield EventBatch(events, range(len(events)), self.name, in_array=True)
            return
        try:
            elements = msgspec.json.decode(data, type=list[msgspec.Raw])
        except RecursionError:
            self.bytes_read += len(data)
            reason = f"{NESTED_TOO_DEEPLY}; the rest of the input was skipped"
            self._on_error(RecordError(self.name, None, reason))
            return
        except _UNDECODABLE as error:
            if "trailing characters" in str(error):
                # not one array but JSON Lines whose first line is an array (a bad record)
                lines = io.BufferedReader(io.BytesIO(data))
                yield from self._read_lines(lines, first_line_number)
                return
            self.bytes_read += len(data)
            truncated = "truncated" in str(error)
            yield from _ArraySalvage(self, data, truncated).batches()
            return
        self.bytes_read += len(data)
        yield from self._decode_each(enumerate(elements), in_array=True)


class _ArraySalvage:
    """Reads the good elements of a JSON array that is broken further on (truncated, say).

    Slower than the normal path, so used only once that path has failed; it stops at the
    first point where the array itself is malformed and reports it with line and column.
    """

    def __init__(self, reader: EventReader, data: bytes, truncated: bool) -> None:
        self._reader = reader
        self._data = data
        self._truncated = truncated

    def batches(self) -> Iterator[EventBatch]:
        text = self._data.decode("utf-8", errors="surrogateescape")
        yield from self._reader._decode_each(self._elements(text), in_array=True)

    def _elements(self, text: str) -> Iterator[tuple[int, bytes]]:
        decoder = json.JSONDecoder()
        position = text.index("[") + 1
        index = 0
        while True:
            position = _skip_blank(text, position)
            if text.startswith("]", position) and index == 0:
                return
            try:
                _, end = decoder.raw_decode(text, position)
            except RecursionError:
                self._malformed(text, position, "nested too deeply")
                return
            except json.JSONDecodeError as error:
                if self._truncated:
                    self._malformed(text, position, "truncated inside the element starting here")
                else:
                    self._malformed(text, error.pos, error.msg[:1].lower() + error.msg[1:])
                return
            yield index, text[position:end].encode("utf-8", errors="surrogateescape")
            index += 1
            position = _skip_blank(text, end)
            if text.startswith("]", position):
                return
            if not text.startswith(",", position):
                self._malformed(text, position, "expected ',' or ']' after an array element")
                return
            position += 1

    def _malformed(self, text: str, position: int, message: str) -> None:
        offset = len(text[:position].encode("utf-8", errors="surrogateescape"))
        if offset >= len(self._data.rstrip()):
            message = "truncated after the last element"
        line, column = _line_and_column(self._data, offset)
        reason = f"malformed JSON array: {message}; the rest of the input was skipped"
        self._reader._on_error(RecordError(f"{self._reader.name}:{line}:{column}", None, reason))


def _skip_blank(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
