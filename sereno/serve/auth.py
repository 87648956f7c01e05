"""Bearer tokens: with `--token-file`, every request but the health checks and the page's
own files (`/`, `/static/...`, `/favicon.ico`) must carry one. The page answers without a
token, but shows data only to a request that carries one (`carries_token`)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping

import msgspec
from fastapi import Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from sereno.serve.answers import JSON, Problem

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/favicon.ico"})  # answered without a token
OPEN_FOLDER = "/static/"  # the page's scripts and style sheet, each a file of this folder


def is_open(path: str) -> bool:
    """Whether `path` is answered without a token: an open path, or a file of the static
    folder (not of a folder below it, nor a way out of it)."""
    if path in OPEN_PATHS:
        return True
    folder, _, name = path.rpartition("/")
    return f"{folder}/" == OPEN_FOLDER and name not in ("", ".", "..")


def carries_token(headers: Mapping[str, str] | Headers, tokens: frozenset[str]) -> bool:
    """Whether the request's `Authorization` header is a bearer one of `tokens` (`headers`:
    a request's, or a mapping with names in lower case)."""
    return _bearer_among(headers.get("authorization"), tokens)


def _bearer_among(authorization: str | None, tokens: Iterable[str]) -> bool:
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    # every token compared, in constant time: how long an answer takes tells nothing
    found = [hmac.compare_digest(token.encode(), known.encode()) for known in tokens]
    return scheme.lower() == "bearer" and any(found)


class BearerTokens:
    """Every request but to the open paths must carry one of `tokens`, or is answered 401.

    Plain ASGI: Starlette's BaseHTTPMiddleware would cost a task and a stream a request.
    """

    def __init__(
        self, app: ASGIApp, tokens: frozenset[str], on_refused: Callable[[], None]
    ) -> None:
        self._app = app
        self._tokens = tokens
        self._on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or is_open(scope["path"])
            or carries_token(Headers(scope=scope), self._tokens)
        ):
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
