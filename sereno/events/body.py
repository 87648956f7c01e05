"""HTTP bodies of events: one event, a JSON array, or JSON Lines; optionally gzipped.

The same reader as for files decodes them, record by record: a bad record is rejected on its
own and the good ones are kept. What makes the whole body unusable (not JSON at all, a broken
array, too big, a type or encoding we do not take) is a `BodyError` with the HTTP status to
answer.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import msgspec

from sereno.errors import SerenoError
from sereno.events.reader import EventReader, RecordError
from sereno.events.schema import Event
from sereno.events.times import ANY_TIME, EventTimes

JSON_TYPES = frozenset({"application/json"})
LINES_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})
DEFAULT_MAX_BODY = 16 << 20
_FIRST_BYTE = re.compile(rb"\s*(.)", re.DOTALL)  # without copying a large body as lstrip would


class BodyError(SerenoError):
    """A request body that cannot be taken at all; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Rejected(msgspec.Struct, frozen=True):
    """A rejected record: its index in the body (0-based), the field at fault and why."""

    index: int
    field: str | None
    reason: str


@dataclass(frozen=True)
class Decoded:
    events: list[Event]
    rejected: list[Rejected]


def decode_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    decode_as: type[Event] = Event,
    max_bytes: int = DEFAULT_MAX_BODY,
    times: EventTimes = ANY_TIME,
) -> Decoded:
    """The events of a request body, and the records rejected (among them those whose
    timestamp `times` does not take)."""
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES | LINES_TYPES:
        raise BodyError(
            415,
            f"unsupported content type {media_type!r}: send application/json "
            "or application/x-ndjson",
        )
    data = _decompressed(body, (content_encoding or "identity").strip().lower(), max_bytes)
    start = _FIRST_BYTE.match(data)
    first = start[1] if start else b""
    single = media_type in JSON_TYPES and first == b"{"
    if single:
        data = b"[" + data + b"]"  # one event: an array of one
    elif media_type in JSON_TYPES and first != b"[":
        raise BodyError(400, "not a JSON object or array of events")
    errors: list[RecordError] = []
    stream = io.BufferedReader(io.BytesIO(data))
    reader = EventReader(stream, "body", errors.append, decode_as, times)
    events = reader.read_all()
    broken = [error for error in errors if error.position is None]
    if broken:
        raise BodyError(400, broken[0].reason)
    in_array = single or first == b"["
    rejected = [
        Rejected(error.position - (0 if in_array else 1), error.field, error.reason)
        for error in errors  # in the order of the records: the reader reports them as it reads
        if error.position is not None
    ]
    return Decoded(events, rejected)


def _decompressed(body: bytes, encoding: str, max_bytes: int) -> bytes:
    if encoding == "identity":
        data = body
    elif encoding == "gzip":
        data = _gunzipped(body, max_bytes)
    else:
        raise BodyError(415, f"unsupported content encoding {encoding!r}: send gzip or none")
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data


def _gunzipped(body: bytes, max_bytes: int) -> bytes:
    """Every gzip member of the body, one after the other (RFC 1952 allows several), but no
    more than `max_bytes + 1` bytes of them: what follows the last member must be one too."""
    pieces: list[bytes] = []
    size, rest = 0, body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            piece = inflater.decompress(rest, max_bytes + 1 - size)  # at least 1: 0 is no limit
        except zlib.error as error:
            which = f" (member {len(pieces) + 1})" if pieces else ""
            raise BodyError(400, f"not valid gzip: {error}{which}") from None
        pieces.append(piece)
        size += len(piece)
        if size > max_bytes:
            raise too_large(max_bytes)
        if not inflater.eof:
            raise BodyError(400, "not valid gzip: the data breaks off")
        rest = inflater.unused_data
        if not rest:
            return b"".join(pieces)


def too_large(max_bytes: int) -> BodyError:
    """The refusal of a body over `max_bytes`, whether it is found as it comes or once
    decompressed."""
    return BodyError(413, f"the body is over the limit of {max_bytes} bytes")
