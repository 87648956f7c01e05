"""Events: the schema agents send, and decoding it from JSON arrays and JSON Lines.

Every record is validated on its own; a bad one becomes a `RecordError` naming where it was,
the field at fault and why, and never stops the records around it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import msgspec

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
FiniteFloat = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
# int stays int so that a value sent as 95 is shown as 95, not 95.0.
Number = int | FiniteFloat


class Event(msgspec.Struct, frozen=True, gc=False):
    """One measurement pushed by an agent."""

    server: NonEmptyStr
    service: NonEmptyStr
    component: NonEmptyStr
    value: Number
    timestamp: Number
    active: bool


EVENT_FIELDS = frozenset(Event.__struct_fields__)

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


def event_type(extra_fields: Iterable[str] = ()) -> type[Event]:
    """The struct to decode into: `Event`, plus any extra fields that conditions read.

    Extra fields an agent sends are allowed; the ones a rule refers to are kept on the event
    (as `msgspec.UNSET` when an event lacks them), the others are not needed by anything.
    """
    extras = sorted(set(extra_fields) - EVENT_FIELDS)
    if not extras:
        return Event
    fields = [(name, Any, msgspec.UNSET) for name in extras]
    struct = msgspec.defstruct("EventWithExtras", fields, bases=(Event,), frozen=True)
    assert issubclass(struct, Event)
    return struct


@dataclass(frozen=True)
class RecordError:
    """A record that was rejected: where it was, which field, and why."""

    location: str
    field: str | None
    reason: str

    def __str__(self) -> str:
        if self.field is None:
            return f"{self.location}: {self.reason}"
        return f"{self.location}: field {self.field!r}: {self.reason}"


ErrorHandler = Callable[[RecordError], None]

_AT_FIELD = re.compile(r"^(?P<message>.*) - at `\$\.(?P<field>\w+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>\w+)`$")
_GOT = re.compile(r"got `(?P<kind>\w+)`")
_BYTE = re.compile(r"\(byte (?P<offset>\d+)\)")


def _explain(error: Exception) -> tuple[str | None, str]:
    """Turn a msgspec decoding error into (field, reason) worded for the user."""
    text = str(error)
    if isinstance(error, UnicodeDecodeError):
        return None, "not valid UTF-8 text"
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
    if "out of range" in text:
        got_text = ", got a number out of range"
    return field, f"expected {_EXPECTATIONS.get(field, 'a valid value')}{got_text}"


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


class ByteStream(Protocol):
    """What the reader needs of its input: a buffered binary stream it can peek into."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...

    def __iter__(self) -> Iterator[bytes]: ...


class EventReader:
    """Reads events from a binary stream holding a JSON array or JSON Lines.

    The format is told by content: a first non-blank byte of `[` means a JSON array (held in
    memory whole); anything else is read as JSON Lines, one line at a time, so memory follows
    the window being evaluated and not the size of the file.
    """

    def __init__(
        self,
        stream: ByteStream,
        name: str,
        on_error: ErrorHandler,
        decode_as: type[Event] = Event,
    ) -> None:
        self._stream = stream
        self.name = name
        self._on_error = on_error
        self._decoder = msgspec.json.Decoder(decode_as)
        self.bytes_read = 0
        self.records_read = 0
        self._location: Callable[[], str] = lambda: self.name

    def last_location(self) -> str:
        """Where the event most recently yielded came from (`FILE:LINE` or `FILE[INDEX]`)."""
        return self._location()

    def __iter__(self) -> Iterator[Event]:
        blank_lines = self._skip_leading_blanks()
        if self._stream.peek(1)[:1] == b"[":
            return self._read_array(self._stream.read(), first_line_number=blank_lines + 1)
        return self._read_lines(self._stream, first_line_number=blank_lines + 1)

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

    def _reject(self, location: str, error: Exception) -> None:
        field, reason = _explain(error)
        self._on_error(RecordError(location, field, reason))

    def _decode(self, raw: bytes | msgspec.Raw, location: Callable[[], str]) -> Event | None:
        self.records_read += 1
        try:
            event: Event = self._decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            self._reject(location(), error)
            return None
        return event

    def _read_lines(self, lines: Iterable[bytes], first_line_number: int) -> Iterator[Event]:
        line_number = first_line_number - 1
        location = lambda: f"{self.name}:{line_number}"  # noqa: E731
        self._location = location
        for line in lines:
            line_number += 1
            self.bytes_read += len(line)
            if line.isspace():
                continue
            event = self._decode(line, location)
            if event is not None:
                yield event

    def _read_array(self, data: bytes, first_line_number: int) -> Iterator[Event]:
        try:
            elements = msgspec.json.decode(data, type=list[msgspec.Raw])
        except (msgspec.DecodeError, UnicodeDecodeError) as error:
            if "trailing characters" in str(error):
                # not one array but JSON Lines whose first line is an array (a bad record)
                yield from self._read_lines(data.splitlines(keepends=True), first_line_number)
                return
            self.bytes_read += len(data)
            truncated = "truncated" in str(error)
            yield from _ArraySalvage(self, data, truncated).events()
            return
        self.bytes_read += len(data)
        yield from self._decode_elements(enumerate(elements))

    def _decode_elements(
        self, elements: Iterable[tuple[int, bytes | msgspec.Raw]]
    ) -> Iterator[Event]:
        index = 0
        location = lambda: f"{self.name}[{index}]"  # noqa: E731
        self._location = location
        for index, raw in elements:  # noqa: B007 (read by `location`)
            event = self._decode(raw, location)
            if event is not None:
                yield event


class _ArraySalvage:
    """Reads the good elements of a JSON array that is broken further on (truncated, say).

    Slower than the normal path, so used only once that path has failed; it stops at the
    first point where the array itself is malformed and reports it with line and column.
    """

    def __init__(self, reader: EventReader, data: bytes, truncated: bool) -> None:
        self._reader = reader
        self._data = data
        self._truncated = truncated

    def events(self) -> Iterator[Event]:
        text = self._data.decode("utf-8", errors="surrogateescape")
        elements = self._elements(text)
        yield from self._reader._decode_elements(elements)

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
