"""A client of a running service's API, for `sereno silence` and `sereno ack`: make, list
and expire silences; acknowledge alerts and take it back. It speaks in the API's own typed
records (`serve.answers`); answers are checked as any input is; a failure is one
`ClientError` line."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from sereno.errors import SerenoError
from sereno.serve.answers import (
    JSON,
    AckAnswer,
    AckRequest,
    SilenceAnswer,
    SilenceListAnswer,
    SilenceRequest,
)

T = TypeVar("T")


class ClientError(SerenoError):
    """The service could not be reached, or refused the request: why, in one line."""


class ServiceClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._api = base_url.rstrip("/") + "/api"
        self._headers = {"authorization": f"Bearer {token}"} if token else {}

    def add_silence(self, request: SilenceRequest) -> SilenceAnswer:
        return self._call("POST", self._url("silences"), 201, SilenceAnswer, request)

    def silences(self) -> SilenceListAnswer:
        return self._call("GET", self._url("silences"), 200, SilenceListAnswer)

    def expire_silence(self, silence_id: str) -> SilenceAnswer:
        return self._call("DELETE", self._url("silences", silence_id), 200, SilenceAnswer)

    def ack(self, alert_id: str, by: str, comment: str) -> AckAnswer:
        url = self._url("alerts", alert_id, "ack")
        return self._call("POST", url, 200, AckAnswer, AckRequest(by, comment))

    def undo_ack(self, alert_id: str) -> AckAnswer:
        return self._call("DELETE", self._url("alerts", alert_id, "ack"), 200, AckAnswer)

    def _url(self, *parts: str) -> str:
        return "/".join([self._api, *(quote(part, safe="") for part in parts)])

    def _call(
        self, method: str, url: str, expected: int, answer: type[T], body: object = None
    ) -> T:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {**self._headers, "content-type": JSON} if body is not None else self._headers
        try:
            response = httpx.request(method, url, headers=headers, content=content, timeout=30)
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {url}: {error}") from None
        if response.status_code != expected:
            raise ClientError(_refusal(url, response))
        try:
            return msgspec.json.decode(response.content, type=answer)
        except msgspec.DecodeError as error:
            raise ClientError(f"{url} answered what was not expected: {error}") from None


def _refusal(url: str, response: httpx.Response) -> str:
    """What the service said when it refused: its `error`, or the start of its answer."""
    try:
        said = msgspec.json.decode(response.content, type=dict[str, Any]).get("error")
    except msgspec.DecodeError:
        said = None
    reason = said if isinstance(said, str) else response.text.strip()[:200]
    return f"{url} answered {response.status_code}: {reason}"
