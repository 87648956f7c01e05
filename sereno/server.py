"""`sereno serve`'s HTTP API: ingest, the open alerts and their history, rules reload,
health and metrics.

A thin adapter: the body is decoded by `ingest`, journalled by `store`, evaluated by `live`,
and what they say is turned into HTTP answers here.
"""

from __future__ import annotations

import hmac
import math
import sqlite3
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from fastapi import FastAPI, Request, Response
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
from starlette.types import ASGIApp, Receive, Scope, Send

from sereno import __version__, statuspage
from sereno.answers import (
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
from sereno.diagnostics import to_stderr
from sereno.errors import RulesError
from sereno.events import DEFAULT_MAX_CLOCK_SKEW, Event, EventTimes
from sereno.ingest import DEFAULT_MAX_BODY, BodyError, decode_body
from sereno.lifecycle import Episode
from sereno.live import LiveEngine
from sereno.notify.delivery import Delivery
from sereno.notify.notice import Planner
from sereno.notify.service import Notifications
from sereno.output import counted
from sereno.rulefmt import RuleSet, load_default_rules, load_rules
from sereno.store import (
    DEFAULT_HISTORY_LIMIT,
    HistoryQuery,
    Journal,
    read_dead_letters,
    read_history,
    write_failure,
)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered without a token


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
            except RulesError as error:
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

    def _answer(self, status: int, content: object) -> Response:
        return Response(self._encoder.encode(content), status_code=status, media_type=JSON)

    def _problem(self, status: int, message: str) -> Response:
        return self._answer(status, Problem(message))

    async def ingest(self, request: Request) -> Response:
        max_body, rejected = self._config.max_body, self._metrics.rejected
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            rejected.labels("too_large").inc()
            return self._problem(413, f"the body is over the limit of {max_body} bytes")
        body = await request.body()
        headers = request.headers
        try:
            decoded = decode_body(
                body,
                headers.get("content-type"),
                headers.get("content-encoding"),
                self._live.event_type,
                max_body,
                self._event_times(),
            )
        except BodyError as error:
            rejected.labels(_reason(error.status)).inc()
            return self._problem(error.status, str(error))
        events = decoded.events
        refused = self._keep(events) if events else None
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
        self, since: str | None = None, rule: str | None = None, limit: int = DEFAULT_HISTORY_LIMIT
    ) -> Response:
        if not limit > 0:
            return self._problem(400, f"limit must be positive, got {limit}")
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
        except RulesError as error:
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
    app.post("/events", status_code=202, **ROUTES["/events"])(api.ingest)
    app.get("/alerts", **ROUTES["/alerts"])(api.alerts)
    app.get("/alerts/history", **ROUTES["/alerts/history"])(api.history)
    app.get("/dead-letters", **ROUTES["/dead-letters"])(api.dead_letters)
    app.post("/-/reload", **ROUTES["/-/reload"])(api.reload)
    app.get("/", **ROUTES["/"])(api.status_page)
    app.get("/healthz", **ROUTES["/healthz"])(api.healthz)
    app.get("/readyz", **ROUTES["/readyz"])(api.readyz)
    app.get("/metrics", **ROUTES["/metrics"])(api.metrics)
    _describe_with_schemas(app)
    return app


def _describe_with_schemas(app: FastAPI) -> None:
    """The OpenAPI document, with the JSON schemas of our answers (from their types)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                schema_components()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _time_parameter(text: str | None) -> float:
    """A time given as seconds since the epoch or in ISO 8601 (2016-10-10T00:00:00Z)."""
    if text is None:
        return float("-inf")
    try:
        seconds = float(text)
    except ValueError:
        seconds = _iso_time(text)
    if not math.isfinite(seconds):
        raise ValueError(f"since: expected a time, got {text!r}")
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
