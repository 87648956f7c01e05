"""`sereno serve`'s HTTP API: the routes to the handlers, the bearer tokens when there are
any, and the OpenAPI document (`GET /openapi.json`); with `--kafka`, an ingest node's few."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from sereno import __version__
from sereno.serve.ackapi import AckApi
from sereno.serve.answers import (
    INGEST_ROUTES,
    NOT_ON_INGEST_NODE,
    ROUTES,
    Problem,
    Status,
    json_answer,
    schema_components,
)
from sereno.serve.auth import BearerTokens, is_open
from sereno.serve.config import ServerConfig
from sereno.serve.handlers import Api
from sereno.serve.ingest import Ingest, Intake, JournalIntake
from sereno.serve.metrics import Metrics
from sereno.serve.params import invalid_request
from sereno.serve.readings import Served
from sereno.serve.receiverapi import ReceiverApi
from sereno.serve.silenceapi import SilenceApi
from sereno.serve.webpage import PageFiles, WebPage


def create_app(served: Served, config: ServerConfig) -> FastAPI:
    """The service's whole API: ingest into the journal and the evaluator, and every reading."""
    api = Api(served, config)
    app = _app(served.metrics, config, _allowing_every_method)
    ingest = Ingest(JournalIntake(served.live, served.journal, config.db), served.metrics, config)
    app.post("/events", status_code=202, **ROUTES["/events"])(ingest.ingest)
    app.post("/-/reload", **ROUTES["/-/reload"])(api.reload)
    silences = SilenceApi(served.notifications.silences)
    app.post("/api/silences", status_code=201, **ROUTES["POST /api/silences"])(silences.create)
    app.delete("/api/silences/{silence_id}", **ROUTES["DELETE /api/silences/{silence_id}"])(
        silences.expire
    )
    acks = AckApi(served.notifications.acks, served.live.alerts)
    ack_path = "/api/alerts/{alert_id}/ack"
    app.post(ack_path, **ROUTES[f"POST {ack_path}"])(acks.ack)
    app.delete(ack_path, **ROUTES[f"DELETE {ack_path}"])(acks.undo)
    receivers = ReceiverApi(served.notifications, lambda: served.live.ruleset)
    test_path = "/api/receivers/{name}/test"
    app.post(test_path, **ROUTES[f"POST {test_path}"])(receivers.test)
    readable: list[tuple[str, Callable[..., Response]]] = [
        ("/alerts", api.alerts),
        ("/alerts/history", api.history),
        ("/dead-letters", api.dead_letters),
        ("/api/silences", silences.listing),
        ("/api/silences/{silence_id}", silences.show),
        ("/api/receivers", receivers.listing),
        ("/api/status", api.status),
        ("/api/rules", api.rules),
        ("/api/fleet", api.fleet),
        ("/api/alerts/{alert_id}", api.alert),
        ("/healthz", api.healthz),
        ("/readyz", api.readyz),
        ("/metrics", api.metrics),
    ]
    for path, handler in readable:
        app.get(path, **ROUTES[path])(handler)
        # HEAD is GET without the body (the server leaves it out); not in the OpenAPI document,
        # as usual for HEAD
        app.head(path, include_in_schema=False)(handler)
    page = WebPage(api, silences.answer, config.tokens)
    app.get("/", **ROUTES["/"])(page.page)
    app.head("/", include_in_schema=False)(page.page)
    files = PageFiles()  # the page's own files: not API routes, so not in the OpenAPI document
    for path, handler in (("/static/{name}", files.static), ("/favicon.ico", files.favicon)):
        app.get(path, include_in_schema=False)(handler)
        app.head(path, include_in_schema=False)(handler)
    _describe_with_schemas(app, secured=bool(config.tokens))
    return app


def create_ingest_app(
    intake: Intake, metrics: Metrics, config: ServerConfig, running: Callable[[], bool]
) -> FastAPI:
    """An ingest node's API (`sereno serve --kafka`): `POST /events` into `intake`, health,
    readiness (while `running()`) and metrics. It keeps no alerts: any other path is a 404
    that says where they are."""
    app = _app(metrics, config, _saying_where_alerts_are)
    app.post("/events", status_code=202, **INGEST_ROUTES["/events"])(
        Ingest(intake, metrics, config).ingest
    )

    def healthz() -> Response:
        return json_answer(200, Status("ok"))

    def readyz() -> Response:
        if not running():
            return json_answer(503, Problem("the producer is not running"))
        return json_answer(200, Status("ready"))

    def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    readable = (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics_page))
    for path, handler in readable:
        app.get(path, **INGEST_ROUTES.get(path, ROUTES[path]))(handler)
        app.head(path, include_in_schema=False)(handler)
    _describe_with_schemas(app, secured=bool(config.tokens))
    return app


def _app(
    metrics: Metrics,
    config: ServerConfig,
    http_errors: Callable[[FastAPI], Callable[[Request, Exception], Awaitable[Response]]],
) -> FastAPI:
    """An app with no route yet: the bearer tokens if there are any, and the answers to a
    bad parameter (400) and to the HTTP errors (`http_errors(app)`)."""
    app = FastAPI(
        title="Sereno",
        version=__version__,
        summary="Rules-based alerting: events in, alerts out",
    )
    if config.tokens:
        refused = metrics.rejected.labels("unauthorized").inc
        app.add_middleware(BearerTokens, tokens=config.tokens, on_refused=refused)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_errors(app))
    return app


def _saying_where_alerts_are(
    app: FastAPI,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """HTTP errors as `_allowing_every_method` answers them, but a path an ingest node does
    not serve (the alerts, the page, silences...) is a 404 that says why."""
    others = _allowing_every_method(app)

    async def answer(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404:
            return json_answer(404, Problem(NOT_ON_INGEST_NODE))
        return await others(request, error)

    return answer


def _allowing_every_method(
    app: FastAPI,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """HTTP errors as FastAPI answers them, but a 405's `Allow` lists the methods of every
    route of the path: a path with a route per method (the silences) would otherwise name
    only the first."""

    async def answer(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 405:
            allowed: set[str] = set()
            for route in app.router.routes:
                matched, _ = route.matches(request.scope)
                if matched is not Match.NONE and isinstance(route, BaseRoute):
                    allowed |= getattr(route, "methods", None) or set()
            headers = {"Allow": ", ".join(sorted(allowed))}
            error = StarletteHTTPException(405, error.detail, headers)
        return await http_exception_handler(request, error)

    return answer


def _describe_with_schemas(app: FastAPI, secured: bool) -> None:
    """The OpenAPI document, with the JSON schemas of our answers (from their types) and,
    when tokens are required, the bearer scheme of every route but the open ones."""

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
    """FastAPI describes a 422 for routes with parameters: we answer 400 (`invalid_request`)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _declare_bearer_tokens(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in document["paths"].items():
        if not is_open(path):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
