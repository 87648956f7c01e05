"""What every sender shares: the failure it reports, and JSON over HTTP."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Protocol

import httpx

from sereno import __version__
from sereno.notify.notice import Notice

USER_AGENT = f"sereno/{__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SNIPPET_BYTES = 200  # of a failed answer's body, in the message


class DeliveryError(Exception):
    """The receiver did not acknowledge a notification, and trying again may help; the
    message says why, in a line. `retry_after` is how long the receiver asked to be left
    alone (seconds), if it did. `receiver_wide`: the failure has nothing to do with the
    notices sent (the receiver could not be reached, or refused the login), so they keep
    their place at the head of the queue rather than let others by."""

    retryable = True

    def __init__(
        self, message: str, retry_after: float | None = None, receiver_wide: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.receiver_wide = receiver_wide


class DeliveryRejected(DeliveryError):
    """The receiver refused the notices themselves (a 4xx answer, an SMTP 5xx for the
    message): they would be refused again, so they are dropped, not retried."""

    retryable = False


# the client errors that say "not now" rather than "never": timeout, too early, too many
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


def is_retryable_status(status: int) -> bool:
    """Whether a request answered `status` (not 2xx) may be taken if sent again: all but the
    client errors (4xx) that say the request itself is wrong, as Alertmanager's notifiers
    judge. A redirect (3xx, not followed) is retried: the URL may be fixed meanwhile, and
    only a receiver that says the notice is wrong has it dropped."""
    return not 400 <= status < 500 or status in RETRYABLE_CLIENT_ERRORS


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
            unreachable = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
            raise DeliveryError(
                f"{self.shown}: {reason}",
                receiver_wide=unreachable or isinstance(error, httpx.InvalidURL),
            ) from None
        if answer.is_success:
            return
        message = f"{self.shown} answered {answer.status_code} {answer.reason_phrase}"
        message += _snippet(answer.content)
        if not is_retryable_status(answer.status_code):
            raise DeliveryRejected(message)
        asked = retry_after(answer.headers.get("Retry-After"))
        # a rate limit, or a wait asked for, is the whole receiver's: not one alert's
        wide = answer.status_code == HTTPStatus.TOO_MANY_REQUESTS or asked is not None
        raise DeliveryError(message, asked, receiver_wide=wide)

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


def _snippet(body: bytes) -> str:
    """The start of an answer's body (its first 200 bytes), on the line: what the receiver
    said was wrong."""
    text = body[:SNIPPET_BYTES].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return f": {text}" if text else ""


def _reason(error: httpx.HTTPError | httpx.InvalidURL) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect ({error})"
    return str(error) or type(error).__name__
