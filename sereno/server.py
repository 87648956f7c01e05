"""`sereno serve`'s HTTP API: ingest, the open alerts, health and metrics.

A thin adapter: the body is decoded by `ingest`, evaluated by `live`, and what they say is
turned into HTTP answers here.
"""

from __future__ import annotations

import hmac
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from sereno import __version__
from sereno.events import event_type
from sereno.ingest import DEFAULT_MAX_BODY, BodyError, Rejected, decode_body
from sereno.lifecycle import Episode
from sereno.live import LiveEngine

JSON = "application/json"


@dataclass(frozen=True)
class ServerConfig:
    max_body: int = DEFAULT_MAX_BODY
    tokens: frozenset[str] = frozenset()  # bearer tokens; none means no authentication


class IngestAnswer(msgspec.Struct):
    accepted: int
    rejected: int
    errors: list[Rejected]


class OpenAlert(msgspec.Struct):
    rule: str
    severity: str
    service: str
    server: str | None
    threshold: str | None
    state: str
    since: int
    value: float | int

    @classmethod
    def of(cls, episode: Episode, thresholds: dict[str, str | None]) -> OpenAlert:
        key = episode.key
        since = episode.fired if episode.fired is not None else episode.started
        return cls(
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server or None,
            threshold=thresholds.get(key.rule),
            state=episode.state.value,
            since=since,
            value=episode.last.value,
        )


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
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

    def watch(self, live: LiveEngine) -> None:
        self.registry.register(_LiveCollector(live))


class _LiveCollector(Collector):
    """The live engine's own counts, read at each scrape."""

    def __init__(self, live: LiveEngine) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        stats = self._live.stats
        counts = (
            ("sereno_events_evaluated", "Events evaluated", stats.events_evaluated),
            ("sereno_late_events", "Events that came after their minute", stats.late_events),
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


def create_app(live: LiveEngine, metrics: Metrics, config: ServerConfig) -> FastAPI:
    app = FastAPI(title="Sereno", version=__version__)
    decode_as = event_type(live.ruleset.fields)
    thresholds = {spec.name: spec.threshold for spec in live.ruleset.rules}
    encoder = msgspec.json.Encoder()

    def answer(status: int, content: object) -> Response:
        return Response(encoder.encode(content), status_code=status, media_type=JSON)

    def problem(status: int, message: str) -> Response:
        return answer(status, {"error": message})

    @app.middleware("http")
    async def authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
        if config.tokens and request.url.path not in ("/healthz", "/readyz"):
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            valid = scheme.lower() == "bearer" and any(
                hmac.compare_digest(token, known) for known in config.tokens
            )
            if not valid:
                metrics.rejected.labels("unauthorized").inc()
                return problem(401, "a valid bearer token is required")
        return await call_next(request)

    @app.post("/events", status_code=202)
    async def ingest(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body:
            metrics.rejected.labels("too_large").inc()
            return problem(413, f"the body is over the limit of {config.max_body} bytes")
        body = await request.body()
        try:
            decoded = decode_body(
                body,
                request.headers.get("content-type"),
                request.headers.get("content-encoding"),
                decode_as,
                config.max_body,
            )
        except BodyError as error:
            metrics.rejected.labels(_reason(error.status)).inc()
            return problem(error.status, str(error))
        if not live.submit(decoded.events):
            metrics.rejected.labels("busy").inc(len(decoded.events))
            return problem(503, "the evaluator is behind: send again shortly")
        metrics.accepted.inc(len(decoded.events))
        if decoded.rejected:
            metrics.rejected.labels("bad_record").inc(len(decoded.rejected))
        return answer(
            202, IngestAnswer(len(decoded.events), len(decoded.rejected), decoded.rejected)
        )

    @app.get("/alerts")
    def alerts() -> Response:
        return answer(200, [OpenAlert.of(episode, thresholds) for episode in live.alerts()])

    @app.get("/healthz")
    def healthz() -> Response:
        return answer(200, {"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        if not live.running:
            return problem(503, "the evaluator is not running")
        return answer(200, {"status": "ready"})

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _reason(status: int) -> str:
    return {400: "malformed", 413: "too_large", 415: "unsupported_type"}.get(status, "other")
