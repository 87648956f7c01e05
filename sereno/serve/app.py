"""`sereno serve`'s HTTP API: ingest, the open alerts and their history, rules reload,
health and metrics.

A thin adapter: the body is decoded by `ingest`, journalled by `store`, evaluated by `live`,
and what they say is turned into HTTP answers here.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import sqlite3
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import msgspec
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from sereno import __version__
from sereno.engine.lifecycle import Episode
from sereno.errors import RefusedFile
from sereno.events.body import DEFAULT_MAX_BODY, BodyError, Decoded, decode_body, too_large
from sereno.events.schema import Event
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW, EventTimes
from sereno.live.evaluator import LiveEngine
from sereno.notify.delivery import Delivery
from sereno.notify.notice import Planner
from sereno.notify.service import Notifications
from sereno.rules.rulefmt import RuleSet, load_default_rules, load_rules
from sereno.serve import statuspage
from sereno.serve.answers import (
    JSON,
    ROUTES,
    IngestAnswer,
    OpenAlert,
    Problem,
    RulesRefused,
    RulesReloaded,
    Status,
    schema_components,
)
from sereno.state.store import (
    DEFAULT_HISTORY_LIMIT,
    HistoryQuery,
    Journal,
    read_dead_letters,
    read_history,
    write_failure,
)
from sereno.stderr import to_stderr
from sereno.text import counted

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered without a token
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
OFF_LOOP_EVENTS = 8000  # about 1 MiB of them, as sent
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class ServerConfig:
    db: Path  # the state file
    max_body: int = DEFAULT_MAX_BODY
    tokens: frozenset[str] = frozenset()  # bearer tokens; none means no authentication
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW  # how far ahead of the clock events may be


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        # a `_created` series beside every counter is only noise (the function is untyped)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "sereno_events_accepted", "Events accepted by POST /events", registry=self.registry
        )
        self.rejected = Counter(
            "sereno_events_rejected",
            "Records and whole bodies refused by POST /events, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.evaluation = Histogram(
            "sereno_window_evaluation_seconds",
            "Time to evaluate a minute, from the batch of events that closed it",
            registry=self.registry,
        )
        self.reloads = Counter(
            "sereno_rules_reloads", "Rules files reloaded and put to work", registry=self.registry
        )
        self.reload_failures = Counter(
            "sereno_rules_reload_failures",
            "Rules files refused on reload (the old rules kept running)",
            registry=self.registry,
        )

    def watch(self, live: LiveEngine) -> None:
        self.registry.register(_LiveCollector(live))

    def watch_delivery(self, delivery: Delivery) -> None:
        self.registry.register(_DeliveryCollector(delivery))


class _LiveCollector(Collector):
    """The live engine's own counts, read at each scrape."""

    def __init__(self, live: LiveEngine) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        stats = self._live.stats
        counts = (
            ("sereno_events_evaluated", "Events evaluated", stats.events_evaluated),
            ("sereno_late_events", "Events that came after their minute", stats.late_events),
            (
                "sereno_events_ahead_of_fleet",
                "Events rejected as far ahead of the rest of the fleet",
                stats.ahead_events,
            ),
            (
                "sereno_evaluation_errors",
                "Batches and minutes that could not be evaluated and were set aside",
                stats.evaluation_errors,
            ),
            ("sereno_windows_evaluated", "Minutes evaluated", stats.windows_evaluated),
            (
                "sereno_condition_errors",
                "Conditions that failed on an event",
                stats.condition_errors,
            ),
        )
        for name, text, value in counts:
            yield CounterMetricFamily(name, text, value=value)
        alerts = GaugeMetricFamily(
            "sereno_alerts", "Open alerts by rule and state", labels=["rule", "state"]
        )
        open_alerts = Tally((e.key.rule, e.state.value) for e in self._live.alerts())
        for (rule, state), count in sorted(open_alerts.items()):
            alerts.add_metric([rule, state], count)
        yield alerts


class _DeliveryCollector(Collector):
    """The notifications' counts by receiver, and what waits in the outbox, at each scrape."""

    COUNTS = (
        ("sent", "Notifications a receiver acknowledged"),
        ("failed", "Attempts to notify that failed"),
        ("retried", "Attempts to notify made again after a failure"),
    )
    DROPPED = (("expired", "expired"), ("rejected", "rejected"))  # reason label, count

    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery

    def collect(self) -> Iterator[Metric]:
        counts = self._delivery.counts
        for field, text in self.COUNTS:
            family = CounterMetricFamily(f"sereno_notifications_{field}", text, labels=["receiver"])
            for receiver, count in counts.items():
                family.add_metric([receiver], getattr(count, field))
            yield family
        dropped = CounterMetricFamily(
            "sereno_notifications_dropped",
            "Notifications dropped undelivered: expired (older than give_up_after) or "
            "rejected (refused for good by the receiver)",
            labels=["receiver", "reason"],
        )
        for receiver, count in counts.items():
            for reason, field in self.DROPPED:
                dropped.add_metric([receiver, reason], getattr(count, field))
        yield dropped
        queued = GaugeMetricFamily(
            "sereno_notifications_queued",
            "Notifications waiting in the outbox for their receiver",
            labels=["receiver"],
        )
        for receiver, depth in self._delivery.depths().items():
            queued.add_metric([receiver], depth)
        yield queued


class RulesReload:
    """Reads the rules file, and the notification config, again and puts them to work, or
    refuses them and keeps the old ones; logs and counts either. For SIGHUP and
    `POST /-/reload` alike."""

    def __init__(
        self,
        path: str | None,
        live: LiveEngine,
        metrics: Metrics,
        notifications: Notifications,
    ) -> None:
        self._path = path  # None: the packaged rules
        self._live = live
        self._metrics = metrics
        self.notifications = notifications  # kept up to date: what the reload put to work
        self._one_at_a_time = threading.Lock()

    def __call__(self) -> RuleSet:
        with self._one_at_a_time:
            try:
                ruleset = load_default_rules() if self._path is None else load_rules(self._path)
                config = self.notifications.read(ruleset)
            except RefusedFile as error:
                self._metrics.reload_failures.inc()
                to_stderr(
                    f"sereno: reload refused, the old rules and receivers keep running:\n{error}"
                )
                raise
            planner = Planner(config, ruleset)
            try:
                self._live.reload(ruleset, planner)
            except TimeoutError as error:
                self._metrics.reload_failures.inc()
                to_stderr(f"sereno: rules reload failed, the old rules keep running: {error}")
                raise
            self.notifications.use(config, planner)
            self._metrics.reloads.inc()
            to_stderr(
                f"sereno: rules reloaded from {ruleset.source}: {len(ruleset.rules)} rules; "
                f"notifying {counted(len(config.receivers), 'receiver')}"
            )
            return ruleset


class BearerTokens:
    """Every request but the health checks must carry one of `tokens`, or is answered 401.

    Plain ASGI: Starlette's BaseHTTPMiddleware would cost a task and a stream a request.
    """

    def __init__(
        self, app: ASGIApp, tokens: frozenset[str], on_refused: Callable[[], None]
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._carries_one(scope):
            await self._app(scope, receive, send)
            return
        self._on_refused()
        refusal = Response(
            msgspec.json.encode(Problem("a valid bearer token is required")),
            status_code=401,
            media_type=JSON,
            headers={"www-authenticate": "Bearer"},
        )
        await refusal(scope, receive, send)

    def _carries_one(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and any(
                    hmac.compare_digest(token, known) for known in self._tokens
                )
        return False


class _Api:
    """The handlers, each a method; `create_app` routes to them."""

    def __init__(
        self,
        live: LiveEngine,
        journal: Journal,
        metrics: Metrics,
        config: ServerConfig,
        reload_rules: RulesReload,
    ) -> None:
        self._live = live
        self._journal = journal
        self._metrics = metrics
        self._config = config
        self._reload_rules = reload_rules
        self._encoder = msgspec.json.Encoder()
        self._alerts_page: tuple[list[Episode], bytes] = ([], b"[]")  # the latest published
        # batches are journalled and queued in the order they come, some in a worker thread
        self._keeping_in_order = asyncio.Lock()

    def _answer(self, status: int, content: object) -> Response:
        return Response(self._encoder.encode(content), status_code=status, media_type=JSON)

    def _problem(self, status: int, message: str) -> Response:
        return self._answer(status, Problem(message))

    async def ingest(self, request: Request) -> Response:
        max_body, rejected = self._config.max_body, self._metrics.rejected
        length = request.headers.get("content-length")
        try:
            if length is not None and length.isdigit() and int(length) > max_body:
                raise too_large(max_body)
            body = await _read_body(request, max_body)
            decoded = await _decode(
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
        return self._answer(202, IngestAnswer(len(events), len(decoded.rejected), decoded.rejected))

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
        published, page = self._alerts_page
        latest = self._live.alerts()
        if latest is not published:  # encoded once for each list the evaluator publishes
            page = self._encoder.encode(self._open_alerts(latest))
            self._alerts_page = latest, page
        return Response(page, media_type=JSON)

    def _open_alerts(self, episodes: list[Episode]) -> list[OpenAlert]:
        thresholds = {spec.name: spec.threshold for spec in self._live.ruleset.rules}
        return [OpenAlert.of(episode, thresholds) for episode in episodes]

    def history(
        self,
        since: Annotated[
            str | None,
            Query(
                description="Seconds since the epoch, or ISO 8601 with a time zone: "
                "the episodes still firing at or after it",
                json_schema_extra=SINCE_SCHEMA,
            ),
        ] = None,
        rule: Annotated[str | None, Query(description="One rule's name")] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_HISTORY_LIMIT, description="The most episodes to answer")
        ] = DEFAULT_HISTORY_LIMIT,
    ) -> Response:
        try:
            query = HistoryQuery(_time_parameter(since), rule, limit)
        except ValueError as error:
            return self._problem(400, str(error))
        return Response(read_history(self._config.db, query), media_type=JSON)

    def dead_letters(self) -> Response:
        return self._answer(200, read_dead_letters(self._config.db))

    def reload(self) -> Response:
        try:
            ruleset = self._reload_rules()
        except TimeoutError as error:
            return self._problem(503, str(error))
        except RefusedFile as error:
            refused = f"the {error.what} is refused, the old rules and receivers keep running"
            return self._answer(400, RulesRefused(refused, error.problems))
        receivers = len(self._reload_rules.notifications.config.receivers)
        answer = RulesReloaded("reloaded", ruleset.source, len(ruleset.rules), receivers)
        return self._answer(200, answer)

    def status_page(self) -> Response:
        live, stats = self._live, self._live.stats
        alerts = self._open_alerts(live.alerts())
        counts = {
            "events evaluated": stats.events_evaluated,
            "late events": stats.late_events,
            "events ahead of the fleet": stats.ahead_events,
            "evaluation errors": stats.evaluation_errors,
            "minutes evaluated": stats.windows_evaluated,
            "condition errors": stats.condition_errors,
        }
        notifications = self._reload_rules.notifications
        delivery = notifications.delivery
        depths = delivery.depths()
        receivers = [
            statuspage.ReceiverRow(
                spec.name, spec.type, depths.get(spec.name, 0), delivery.counts[spec.name]
            )
            for spec in notifications.config.receivers
        ]
        return HTMLResponse(statuspage.render(alerts, live.ruleset, counts, receivers))

    def healthz(self) -> Response:
        return self._answer(200, Status("ok"))

    def readyz(self) -> Response:
        if not self._live.running:
            return self._problem(503, "the evaluator is not running")
        return self._answer(200, Status("ready"))

    def metrics(self) -> Response:
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    live: LiveEngine,
    journal: Journal,
    metrics: Metrics,
    config: ServerConfig,
    reload_rules: RulesReload,
) -> FastAPI:
    api = _Api(live, journal, metrics, config, reload_rules)
    app = FastAPI(
        title="Sereno",
        version=__version__,
        summary="Rules-based alerting: events in, alerts out",
    )
    if config.tokens:
        refused = metrics.rejected.labels("unauthorized").inc
        app.add_middleware(BearerTokens, tokens=config.tokens, on_refused=refused)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.post("/events", status_code=202, **ROUTES["/events"])(api.ingest)
    app.post("/-/reload", **ROUTES["/-/reload"])(api.reload)
    readable: list[tuple[str, Callable[..., Response]]] = [
        ("/alerts", api.alerts),
        ("/alerts/history", api.history),
        ("/dead-letters", api.dead_letters),
        ("/", api.status_page),
        ("/healthz", api.healthz),
        ("/readyz", api.readyz),
        ("/metrics", api.metrics),
    ]
    for path, handler in readable:
        app.get(path, **ROUTES[path])(handler)
        # HEAD is GET without the body (the server leaves it out); not in the OpenAPI document,
        # as usual for HEAD
        app.head(path, include_in_schema=False)(handler)
    _describe_with_schemas(app, secured=bool(config.tokens))
    return app


async def _read_body(request: Request, max_body: int) -> bytes:
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


async def _decode(
    body: bytes, headers: Headers, decode_as: type[Event], max_body: int, times: EventTimes
) -> Decoded:
    content_type, encoding = headers.get("content-type"), headers.get("content-encoding")
    arguments = (body, content_type, encoding, decode_as, max_body, times)
    compressed = encoding is not None and encoding.strip().lower() not in ("", "identity")
    if compressed or len(body) > OFF_LOOP_BYTES:
        return await run_in_threadpool(decode_body, *arguments)
    return decode_body(*arguments)


async def _invalid_request(request: Request, error: Exception) -> Response:
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
    given = repr(problem.get("input"))
    if len(given) > 80:
        given = given[:77] + "..."
    return f"{name}: {str(problem.get('msg', 'not valid')).lower()}, got {given}"


def _describe_with_schemas(app: FastAPI, secured: bool) -> None:
    """The OpenAPI document, with the JSON schemas of our answers (from their types) and,
    when tokens are required, the bearer scheme of every route but the health checks."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(schema_components())
            _drop_validation_answers(document)
            if secured:
                _declare_bearer_tokens(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_validation_answers(document: dict[str, Any]) -> None:
    """FastAPI describes a 422 for routes with parameters: we answer 400 (`_invalid_request`)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _declare_bearer_tokens(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in document["paths"].items():
        if path not in OPEN_PATHS:
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]


def _time_parameter(text: str | None) -> float:
    """A time given as seconds since the epoch or in ISO 8601 (2016-10-10T00:00:00Z)."""
    if text is None:
        return float("-inf")
    if not _JSON_NUMBER.fullmatch(text):
        return _iso_time(text)
    seconds = float(text)
    low, high = SINCE_RANGE
    if not low <= seconds <= high:
        raise ValueError(
            f"since: expected a time from {low:.0f} to {high:.0f} seconds, got {text!r}"
        )
    return seconds


def _iso_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since: expected seconds since the epoch or an ISO 8601 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"since: {text!r} has no time zone (add Z for UTC)")
    return moment.timestamp()


def _reason(status: int) -> str:
    return {400: "malformed", 413: "too_large", 415: "unsupported_type"}.get(status, "other")
