"""A client of a running service's silences API, for `sereno silence`: make, list and
expire silences. Answers are checked as any input is; a failure is one `SilenceClientError`
line."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from sereno.errors import SerenoError

T = TypeVar("T")


class SilenceClientError(SerenoError):
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


class SilenceClient:
    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._base = base_url.rstrip("/") + "/api/silences"
        self._headers = {"authorization": f"Bearer {token}"} if token else {}

    def add(self, request: dict[str, Any]) -> ShownSilence:
        return self._call("POST", self._base, 201, ShownSilence, json=request)

    def listing(self) -> ShownListing:
        return self._call("GET", self._base, 200, ShownListing)

    def expire(self, silence_id: str) -> ShownSilence:
        url = f"{self._base}/{quote(silence_id, safe='')}"
        return self._call("DELETE", url, 200, ShownSilence)

    def _call(self, method: str, url: str, expected: int, answer: type[T], **body: Any) -> T:
        try:
            response = httpx.request(method, url, headers=self._headers, timeout=30, **body)
        except httpx.HTTPError as error:
            raise SilenceClientError(f"cannot reach {self._base}: {error}") from None
        if response.status_code != expected:
            raise SilenceClientError(_refusal(url, response))
        try:
            return msgspec.json.decode(response.content, type=answer)
        except msgspec.DecodeError as error:
            raise SilenceClientError(f"{url} answered what is not a silence: {error}") from None


def _refusal(url: str, response: httpx.Response) -> str:
    """What the service said when it refused: its `error`, or the start of its answer."""
    try:
        said = msgspec.json.decode(response.content, type=dict[str, Any]).get("error")
    except msgspec.DecodeError:
        said = None
    reason = said if isinstance(said, str) else response.text.strip()[:200]
    return f"{url} answered {response.status_code}: {reason}"
