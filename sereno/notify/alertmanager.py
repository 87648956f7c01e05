"""Prometheus Alertmanager, API v2: `POST /api/v2/alerts`, as Prometheus itself sends.

Alertmanager takes an alert that is not sent again within its `resolve_timeout` for resolved,
so the alerts firing are sent again every `resend_interval` (the delivery worker's refresh);
a resolved one is sent with its `endsAt`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import RESOLVED, Notice
from sereno.notify.redact import shown_url
from sereno.notify.transport import JsonPoster
from sereno.text import iso_time

BATCH = 64


def alertmanager_alerts(notice: Notice) -> list[dict[str, object]]:
    """The notice as Alertmanager's alerts. Severity is one of its labels, so an alert that
    moved to another level ends under the labels it had, and goes on under the new ones."""
    alerts = [alertmanager_alert(notice)]
    if notice.previous_severity is not None and notice.reason in ("escalated", "de-escalated"):
        before = msgspec.structs.replace(
            notice, severity=notice.previous_severity, status=RESOLVED, ended=notice.at
        )
        alerts.insert(0, alertmanager_alert(before))
    return alerts


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
        alerts = [alert for notice in notices for alert in alertmanager_alerts(notice)]
        self._poster.post(alerts, notices[-1].key)

    def close(self) -> None:
        self._poster.close()
