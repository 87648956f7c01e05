"""`POST /events`: the body read, decoded and checked, and its good events handed to an
`Intake`, which keeps them or says why it cannot now.

Two intakes: the service's own (`JournalIntake`: the state file's journal, then the
evaluator's queue), and, with `--kafka`, the events topic (`sereno.kafka.ingest`), which the
CLI hands in; the handler knows neither.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from sereno.events.body import BodyError, too_large
from sereno.events.schema import Event
from sereno.events.times import EventTimes
from sereno.live.evaluator import Evaluation
from sereno.serve.answers import IngestAnswer, Problem, json_answer
from sereno.serve.config import ServerConfig
from sereno.serve.metrics import Metrics
from sereno.serve.params import decode, read_body
from sereno.state.store import Journal, write_failure
from sereno.stderr import to_stderr

OFF_LOOP_EVENTS = 8000  # about 1 MiB of them, as sent


class Intake(Protocol):
    """Where the events a request brings are kept."""

    @property
    def event_type(self) -> type[Event]:
        """What bodies decode into (the rules' extra fields kept)."""
        ...

    @property
    def late_before(self) -> float:
        """An event before this time is refused as late (-inf: none is)."""
        ...

    @property
    def refused_as(self) -> str:
        """The `reason` label of `sereno_events_rejected` for the events `take` refuses."""
        ...

    @property
    def retry_after(self) -> int | None:
        """The seconds a refused request's `Retry-After` says, if it says any."""
        ...

    async def take(self, events: list[Event]) -> str | None:
        """Keep the events (in the order requests come); once they are kept for good, None;
        if they cannot be kept now, why (the client sends them again). May raise `BodyError`
        for events that can never be kept."""
        ...


class JournalIntake:
    """`sereno serve`'s own: the events journalled in the state file, then queued for the
    evaluator."""

    refused_as = "busy"
    retry_after = None

    def __init__(self, live: Evaluation, journal: Journal, db: Path) -> None:
        self._live = live
        self._journal = journal
        self._db = db
        # batches are journalled and queued in the order they come, some in a worker thread
        self._keeping_in_order = asyncio.Lock()

    @property
    def event_type(self) -> type[Event]:
        return self._live.event_type  # changes with a reload

    @property
    def late_before(self) -> float:
        return self._live.evaluated_before

    async def take(self, events: list[Event]) -> str | None:
        """`_keep`, off the event loop for a large batch (encoding and writing it takes about
        as long as decoding it)."""
        async with self._keeping_in_order:
            if len(events) > OFF_LOOP_EVENTS:
                return await run_in_threadpool(self._keep, events)
            return self._keep(events)

    def _keep(self, events: list[Event]) -> str | None:
        """Journal and queue the events; why not, if they cannot be taken now."""
        if not self._live.has_room():
            return "the evaluator is behind: send again shortly"
        try:
            seq = self._journal.append(events)
        except sqlite3.Error as error:
            why = write_failure(self._db, error)
            to_stderr(f"sereno: cannot store events: {why}")
            return f"cannot store the events: {why}"
        except OverflowError as error:  # an extra field the rules read, beyond 64 bits
            raise BodyError(400, f"cannot store the events: {error}") from None
        self._live.submit(seq, events)
        self._journal.trim(self._live.saved_before)
        return None


class Ingest:
    """The handler of `POST /events`."""

    def __init__(self, intake: Intake, metrics: Metrics, config: ServerConfig) -> None:
        self._intake = intake
        self._metrics = metrics
        self._config = config

    async def ingest(self, request: Request) -> Response:
        max_body, rejected, intake = self._config.max_body, self._metrics.rejected, self._intake
        length = request.headers.get("content-length")
        try:
            if length is not None and length.isdigit() and int(length) > max_body:
                raise too_large(max_body)
            body = await read_body(request, max_body)
            decoded = await decode(
                body, request.headers, intake.event_type, max_body, self._event_times()
            )
            refused = await intake.take(decoded.events) if decoded.events else None
        except ClientDisconnect:
            rejected.labels("disconnected").inc()
            return Response(status_code=400)  # never sent: the client is gone
        except BodyError as error:
            rejected.labels(_reason(error.status)).inc()
            answer = json_answer(error.status, Problem(str(error)))
            if error.status == 413:
                answer.headers["connection"] = "close"  # rather than take the rest of the body
            return answer
        events = decoded.events
        if refused is not None:
            rejected.labels(intake.refused_as).inc(len(events))
            answer = json_answer(503, Problem(refused))
            if intake.retry_after is not None:
                answer.headers["retry-after"] = str(intake.retry_after)
            return answer
        self._metrics.accepted.inc(len(events))
        if decoded.rejected:
            rejected.labels("bad_record").inc(len(decoded.rejected))
        return json_answer(202, IngestAnswer(len(events), len(decoded.rejected), decoded.rejected))

    def _event_times(self) -> EventTimes:
        """What a body's timestamps may be now: not ahead of this clock, not late."""
        return EventTimes(time.time(), self._config.max_clock_skew, self._intake.late_before)


def _reason(status: int) -> str:
    """The `reason` label of `sereno_events_rejected` for a body refused with `status`."""
    return {400: "malformed", 413: "too_large", 415: "unsupported_type"}.get(status, "other")
