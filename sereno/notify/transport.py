"""What every sender shares: the failure it reports, and JSON over HTTP."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from sereno import __version__
from sereno.notify.notice import Notice

USER_AGENT = f"sereno/{__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(Exception):
    """The receiver did not acknowledge a notification; the message says why, in a line.
    `retry_after` is how long the receiver asked to be left alone (seconds), if it did."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers notices to one receiver, returning only once it has acknowledged them."""

    batch_size: int  # how many queued notices one delivery may carry

    def send(self, notices: Sequence[Notice]) -> None: ...

    def close(self) -> None: ...


class JsonPoster:
    """POSTs JSON to one URL; a 2xx answer is the acknowledgement. Failures name the URL
    as `shown` (its credentials hidden), never as it is."""

    def __init__(
        self, url: str, shown: str, timeout: float, headers: Mapping[str, str] = {}
    ) -> None:
        self._url, self.shown = url, shown
        self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT, **headers})

    def __repr__(self) -> str:
        return f"JsonPoster({self.shown!r})"

    def post(self, body: object, key: str) -> None:
        try:
            answer = self._client.post(self._url, json=body, headers={IDEMPOTENCY_HEADER: key})
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            reason = _reason(error).replace(self._url, self.shown)
            raise DeliveryError(f"{self.shown}: {reason}") from None
        if not answer.is_success:
            snippet = answer.text[:200].strip().replace("\n", " ")
            raise DeliveryError(
                f"{self.shown} answered {answer.status_code} {answer.reason_phrase}"
                + (f": {snippet}" if snippet else ""),
                retry_after(answer.headers.get("Retry-After")),
            )

    def close(self) -> None:
        self._client.close()


def retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds, or an HTTP date."""
    if header is None:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None  # not a header we can read: the backoff alone decides
    return max(0.0, when.timestamp() - time.time())


def _reason(error: httpx.HTTPError | httpx.InvalidURL) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})"
    return str(error) or type(error).__name__
