"""Prometheus Alertmanager, API v2: `POST /api/v2/alerts`, as Prometheus itself sends.

Alertmanager takes an alert that is not sent again within its `resolve_timeout` for resolved,
so the alerts firing are sent again every `resend_interval` (the delivery worker's refresh);
a resolved one is sent with its `endsAt`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import Notice, iso_time
from sereno.notify.redact import shown_url
from sereno.notify.transport import JsonPoster

BATCH = 64


def alertmanager_alert(notice: Notice) -> dict[str, object]:
    alert: dict[str, object] = {
        "labels": notice.labels,
        "annotations": notice.annotations,
        "startsAt": iso_time(notice.started),
    }
    if notice.ended is not None:
        alert["endsAt"] = iso_time(notice.ended)
    if notice.external_url:
        alert["generatorURL"] = notice.external_url
    return alert


class AlertmanagerSender:
    batch_size = BATCH

    def __init__(self, spec: ReceiverSpec) -> None:
        url = spec.url.rstrip("/") + "/api/v2/alerts"
        self._poster = JsonPoster(url, shown_url(url), spec.timing.timeout)

    def send(self, notices: Sequence[Notice]) -> None:
        # all of them, in order: Alertmanager takes them one after the other, and an alert
        # that fired again must not look like the episode before it (it would merge them)
        self._poster.post([alertmanager_alert(n) for n in notices], notices[-1].key)

    def close(self) -> None:
        self._poster.close()
