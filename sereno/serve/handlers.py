"""`sereno serve`'s request handlers: ingest, the open alerts and their history, the dead
letters, rules reload, the page's readings (status, rules, fleet, one alert), health and
metrics (the web page itself is `webpage.py`).

A thin adapter: the body is decoded by `events.body`, journalled by `state.store`, evaluated
by `live`, and what they say is turned into HTTP answers here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import msgspec
from fastapi import Request, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from sereno.engine.lifecycle import Episode
from sereno.errors import RefusedFile
from sereno.events.body import BodyError, too_large
from sereno.events.schema import Event
from sereno.events.times import EventTimes
from sereno.live.fleet import FleetView
from sereno.serve.answers import (
    JSON,
    IngestAnswer,
    Problem,
    RulesRefused,
    RulesReloaded,
    Status,
    json_answer,
)
from sereno.serve.config import ServerConfig
from sereno.serve.params import (
    AlertId,
    HistoryLimit,
    RuleName,
    ServiceName,
    SeverityName,
    Since,
    Until,
    decode,
    read_body,
    since_seconds,
    until_seconds,
)
from sereno.serve.readings import Readings, Served, fleet_answer
from sereno.state.store import (
    DEFAULT_HISTORY_LIMIT,
    HistoryQuery,
    read_dead_letters,
    read_history,
    write_failure,
)
from sereno.stderr import to_stderr

OFF_LOOP_EVENTS = 8000  # about 1 MiB of them, as sent


class Api(Readings):
    """The handlers, each a method; `create_app` routes to them. The records they answer
    with are built by `Readings`, whose methods the page calls too."""

    def __init__(self, served: Served, config: ServerConfig) -> None:
        super().__init__(served, config)
        self._journal = served.journal
        self._metrics = served.metrics
        self._reload_rules = served.reload_rules
        self._encoder = msgspec.json.Encoder()
        self._alerts_page: tuple[list[Episode], bytes] = ([], b"[]")  # the latest published
        self._fleet_page: tuple[FleetView | None, str | None, bytes] = (None, None, b"")
        # batches are journalled and queued in the order they come, some in a worker thread
        self._keeping_in_order = asyncio.Lock()

    def _problem(self, status: int, message: str) -> Response:
        return json_answer(status, Problem(message))

    async def ingest(self, request: Request) -> Response:
        max_body, rejected = self._config.max_body, self._metrics.rejected
        length = request.headers.get("content-length")
        try:
            if length is not None and length.isdigit() and int(length) > max_body:
                raise too_large(max_body)
            body = await read_body(request, max_body)
            decoded = await decode(
                body, request.headers, self._live.event_type, max_body, self._event_times()
            )
            refused = await self._keep_in_order(decoded.events) if decoded.events else None
        except ClientDisconnect:
            rejected.labels("disconnected").inc()
            return Response(status_code=400)  # never sent: the client is gone
        except BodyError as error:
            rejected.labels(_reason(error.status)).inc()
            answer = self._problem(error.status, str(error))
            if error.status == 413:
                answer.headers["connection"] = "close"  # rather than take the rest of the body
            return answer
        events = decoded.events
        if refused is not None:
            rejected.labels("busy").inc(len(events))
            return self._problem(503, refused)
        self._metrics.accepted.inc(len(events))
        if decoded.rejected:
            rejected.labels("bad_record").inc(len(decoded.rejected))
        return json_answer(202, IngestAnswer(len(events), len(decoded.rejected), decoded.rejected))

    def _event_times(self) -> EventTimes:
        """What a body's timestamps may be now: not ahead of this clock, not late."""
        return EventTimes(time.time(), self._config.max_clock_skew, self._live.evaluated_before)

    async def _keep_in_order(self, events: list[Event]) -> str | None:
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
            why = write_failure(self._config.db, error)
            to_stderr(f"sereno: cannot store events: {why}")
            return f"cannot store the events: {why}"
        except OverflowError as error:  # an extra field the rules read, beyond 64 bits
            raise BodyError(400, f"cannot store the events: {error}") from None
        self._live.submit(seq, events)
        return None

    def alerts(self) -> Response:
        latest = self._live.alerts()
        notifications = self._notifications
        if (
            notifications.silences.any_active()
            or notifications.acks.any()
            or notifications.config.maintenance_windows
        ):  # what is silenced changes with time, what is acknowledged with requests
            return Response(self._encoder.encode(self._open_alerts(latest)), media_type=JSON)
        published, page = self._alerts_page
        if latest is not published:  # encoded once for each list the evaluator publishes
            page = self._encoder.encode(self._open_alerts(latest))
            self._alerts_page = latest, page
        return Response(page, media_type=JSON)

    def history(
        self,
        since: Since = None,
        rule: RuleName = None,
        limit: HistoryLimit = DEFAULT_HISTORY_LIMIT,
        until: Until = None,
        service: ServiceName = None,
        severity: SeverityName = None,
    ) -> Response:
        try:
            query = HistoryQuery(
                since_seconds(since), rule, limit, until_seconds(until), service, severity
            )
        except ValueError as error:
            return self._problem(400, str(error))
        return Response(read_history(self._config.db, query), media_type=JSON)

    def status(self) -> Response:
        return json_answer(200, self.status_answer())

    def rules(self) -> Response:
        return json_answer(200, self.rules_answer())

    def fleet(self, service: ServiceName = None) -> Response:
        fleet = self._live.fleet()
        shown, asked, page = self._fleet_page
        if fleet is not shown or service != asked:  # the page asks again and again
            page = self._encoder.encode(fleet_answer(fleet, service))
            self._fleet_page = fleet, service, page
        return Response(page, media_type=JSON)

    def alert(self, alert_id: AlertId) -> Response:
        detail = self.alert_detail(alert_id)
        if detail is None:
            return self._problem(
                404, f"no open alert nor episode of the history has the id {alert_id}"
            )
        return json_answer(200, detail)

    def dead_letters(self) -> Response:
        return json_answer(200, read_dead_letters(self._config.db))

    def reload(self) -> Response:
        try:
            ruleset = self._reload_rules()
        except TimeoutError as error:
            return self._problem(503, str(error))
        except RefusedFile as error:
            refused = f"the {error.what} is refused, the old rules and receivers keep running"
            return json_answer(400, RulesRefused(refused, error.problems))
        receivers = len(self._notifications.config.receivers)
        answer = RulesReloaded("reloaded", ruleset.source, len(ruleset.rules), receivers)
        return json_answer(200, answer)

    def healthz(self) -> Response:
        return json_answer(200, Status("ok"))

    def readyz(self) -> Response:
        if not self._live.running:
            return self._problem(503, "the evaluator is not running")
        return json_answer(200, Status("ready"))

    def metrics(self) -> Response:
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _reason(status: int) -> str:
    """The `reason` label of `sereno_events_rejected` for a body refused with `status`."""
    return {400: "malformed", 413: "too_large", 415: "unsupported_type"}.get(status, "other")
