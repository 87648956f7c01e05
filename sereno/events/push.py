"""`sereno push`: an agent simulator that replays a file of events to a running service.

Events are sent in event-time order, in batches of JSON Lines; with a speed, paced so that
event time passes `speed` times faster than the clock (60: an hour a minute).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx
import msgspec

from sereno.errors import SerenoError
from sereno.events.schema import Event


class PushError(SerenoError):
    """The service could not be reached, or refused a batch."""


@dataclass
class PushReport:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0


def in_time_order_batches(events: Sequence[Event], size: int) -> Iterator[list[Event]]:
    ordered = sorted(events, key=lambda event: event.timestamp)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def push(
    batches: Iterator[list[Event]],
    url: str,
    speed: float | None = None,
    token: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PushReport:
    """POST each batch to `url`; pace them by event time when `speed` is given."""
    report = PushReport()
    encoder = msgspec.json.Encoder()
    headers = {"content-type": "application/x-ndjson"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    first_event: float | None = None
    started = clock()
    with httpx.Client(timeout=30) as client:
        for batch in batches:
            if speed:
                first_event = batch[0].timestamp if first_event is None else first_event
                due = started + (batch[0].timestamp - first_event) / speed
                sleep(max(0.0, due - clock()))
            body = b"".join(encoder.encode(event) + b"\n" for event in batch)
            answer = _post(client, url, body, headers)
            report.requests += 1
            report.accepted += answer["accepted"]
            report.rejected += answer["rejected"]
    return report


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> dict[str, int]:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise PushError(f"cannot reach {url}: {error}") from None
    if response.status_code != 202:
        raise PushError(f"{url} answered {response.status_code}: {response.text.strip()}")
    answer: dict[str, int] = response.json()
    return answer
