"""Bearer tokens: with `--token-file`, every request but the health checks must carry one."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import msgspec
from fastapi import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sereno.serve.answers import JSON, Problem

OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered without a token


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
