"""What a request brings, read and checked: the history's query parameters (a time as
seconds since the epoch or in ISO 8601), a body read no further than its limit and decoded
off the event loop when that is worth it, and the 400 for a parameter that is not one."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec
from fastapi import Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from sereno.events.body import Decoded, decode_body, too_large
from sereno.events.schema import Event
from sereno.events.times import EventTimes
from sereno.serve.answers import JSON, Problem

MAX_HISTORY_LIMIT = 10_000
# decoding takes about 0.5 ms for each 64 KiB (135 ms for 15 MB): larger bodies, and any
# compressed one (a small body may inflate to --max-body), are decoded in a worker thread
# so that the event loop answers other requests meanwhile; smaller ones (8 ms at the most)
# are not worth the hop, which costs a fifth of the throughput at agents' usual 1,000-event
# batches (`python benchmarks/ingest.py FILE`)
OFF_LOOP_BYTES = 1 << 20
# `since` in seconds: the years 1 to 9999, as in ISO 8601, give or take a day of time zones
SINCE_RANGE = (
    datetime.min.replace(tzinfo=timezone.utc).timestamp() - 86_400,
    datetime.max.replace(tzinfo=timezone.utc).timestamp() + 86_400,
)
SINCE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": SINCE_RANGE[0], "maximum": SINCE_RANGE[1]},
        {"type": "string", "format": "date-time"},
    ]
}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

# `GET /alerts/history`'s parameters, as FastAPI reads, checks and describes them
Since = Annotated[
    str | None,
    Query(
        description="Seconds since the epoch, or ISO 8601 with a time zone: "
        "the episodes still firing at or after it",
        json_schema_extra=SINCE_SCHEMA,
    ),
]
Until = Annotated[
    str | None,
    Query(
        description="Seconds since the epoch, or ISO 8601 with a time zone: "
        "the episodes that started before it",
        json_schema_extra=SINCE_SCHEMA,
    ),
]
# names as rules files and events write them: bounded, so that a hostile one is a 400
NAME_LENGTH = 1000
RuleName = Annotated[str | None, Query(description="One rule's name", max_length=NAME_LENGTH)]
ServiceName = Annotated[str | None, Query(description="One service", max_length=NAME_LENGTH)]
SeverityName = Annotated[
    str | None, Query(description="One severity's name", max_length=NAME_LENGTH)
]
ALERT_ID = r"^[0-9a-f]{10}$"  # an alert's short id: `episode_id`
AlertId = Annotated[str, Path(description="The alert's short id", pattern=ALERT_ID)]
HistoryLimit = Annotated[
    int, Query(ge=1, le=MAX_HISTORY_LIMIT, description="The most episodes to answer")
]


def since_seconds(text: str | None) -> float:
    """A time given as seconds since the epoch or in ISO 8601 (2016-10-10T00:00:00Z); none is
    the earliest time."""
    return _seconds(text, "since") if text is not None else float("-inf")


def until_seconds(text: str | None) -> float:
    """`since_seconds` for `until`: none is the latest time."""
    return _seconds(text, "until") if text is not None else float("inf")


def _seconds(text: str, name: str) -> float:
    if not _JSON_NUMBER.fullmatch(text):
        return _iso_time(text, name)
    seconds = float(text)
    low, high = SINCE_RANGE
    if not low <= seconds <= high:
        raise ValueError(
            f"{name}: expected a time from {low:.0f} to {high:.0f} seconds, got {_shown(text)}"
        )
    return seconds


def iso_moment(text: str) -> datetime | None:
    """An ISO 8601 time (`Z` taken for UTC), or None if `text` is not one."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso_time(text: str, name: str) -> float:
    moment = iso_moment(text)
    if moment is None:
        raise ValueError(
            f"{name}: expected seconds since the epoch or an ISO 8601 time, got {_shown(text)}"
        )
    if moment.tzinfo is None:
        raise ValueError(f"{name}: {_shown(text)} has no time zone (add Z for UTC)")
    return moment.timestamp()


def _shown(given: object) -> str:
    """What was given, as a problem quotes it: on one line, and not too long."""
    shown = repr(given)
    return shown if len(shown) <= 80 else shown[:77] + "..."


async def read_body(request: Request, max_body: int) -> bytes:
    """The body as it comes, whatever its transfer encoding; refused as soon as it is over
    `max_body`, not once it is all in memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise too_large(max_body)
        chunks.append(chunk)
    return b"".join(chunks)


async def decode(
    body: bytes, headers: Headers, decode_as: type[Event], max_body: int, times: EventTimes
) -> Decoded:
    """`decode_body`, in a worker thread for a large or compressed body."""
    content_type, encoding = headers.get("content-type"), headers.get("content-encoding")
    arguments = (body, content_type, encoding, decode_as, max_body, times)
    compressed = encoding is not None and encoding.strip().lower() not in ("", "identity")
    if compressed or len(body) > OFF_LOOP_BYTES:
        return await run_in_threadpool(decode_body, *arguments)
    return decode_body(*arguments)


async def invalid_request(request: Request, error: Exception) -> Response:
    """A query parameter that is not one: 400 and the first problem, in a line."""
    assert isinstance(error, RequestValidationError)
    return Response(
        msgspec.json.encode(Problem(_first_problem(error))), status_code=400, media_type=JSON
    )


def _first_problem(error: RequestValidationError) -> str:
    problems = error.errors()
    if not problems:
        return "the request is not valid"
    problem = problems[0]
    name = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "the request"
    given = _shown(problem.get("input"))
    return f"{name}: {str(problem.get('msg', 'not valid')).lower()}, got {given}"
