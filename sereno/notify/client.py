"""A client of a running service's API, for `sereno silence` and `sereno ack`: make, list
and expire silences; acknowledge alerts and take it back. Answers are checked as any input
is; a failure is one `ClientError` line."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from sereno.errors import SerenoError

T = TypeVar("T")


class ClientError(SerenoError):
    """The service could not be reached, or refused the request: why, in one line."""


class ShownSilence(msgspec.Struct):
    """A silence as the API answers it."""

    id: str
    state: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    expired_at: float | None = None


class ShownListing(msgspec.Struct):
    active: list[ShownSilence]
    pending: list[ShownSilence]
    expired: list[ShownSilence]


class ShownAck(msgspec.Struct):
    """An acknowledgement as the API answers it."""

    alert_id: str
    by: str
    at: float
    comment: str
    severity: str


class ServiceClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._api = base_url.rstrip("/") + "/api"
        self._headers = {"authorization": f"Bearer {token}"} if token else {}

    def add_silence(self, request: dict[str, Any]) -> ShownSilence:
        return self._call("POST", self._url("silences"), 201, ShownSilence, json=request)

    def silences(self) -> ShownListing:
        return self._call("GET", self._url("silences"), 200, ShownListing)

    def expire_silence(self, silence_id: str) -> ShownSilence:
        return self._call("DELETE", self._url("silences", silence_id), 200, ShownSilence)

    def ack(self, alert_id: str, by: str, comment: str) -> ShownAck:
        body = {"by": by, "comment": comment}
        return self._call("POST", self._url("alerts", alert_id, "ack"), 200, ShownAck, json=body)

    def undo_ack(self, alert_id: str) -> ShownAck:
        return self._call("DELETE", self._url("alerts", alert_id, "ack"), 200, ShownAck)

    def _url(self, *parts: str) -> str:
        return "/".join([self._api, *(quote(part, safe="") for part in parts)])

    def _call(self, method: str, url: str, expected: int, answer: type[T], **body: Any) -> T:
        try:
            response = httpx.request(method, url, headers=self._headers, timeout=30, **body)
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
