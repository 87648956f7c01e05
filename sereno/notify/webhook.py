"""The generic webhook: Alertmanager's webhook payload (version 4), one alert a request, so
that receivers written for Alertmanager or Grafana take it unchanged."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import Notice
from sereno.notify.transport import JsonPoster
from sereno.text import iso_time

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


def alert_body(notice: Notice) -> dict[str, object]:
    return {
        "status": notice.status,
        "labels": notice.labels,
        "annotations": notice.annotations,
        "startsAt": iso_time(notice.started),
        "endsAt": iso_time(notice.ended) if notice.ended is not None else ZERO_TIME,
        "generatorURL": notice.external_url,
        "fingerprint": notice.fingerprint,
    }


def webhook_payload(receiver: str, notice: Notice) -> dict[str, object]:
    """Alertmanager's payload: one alert, or a group's (a receiver with group_by)."""
    members = notice.alerts or (notice,)
    group_labels = notice.group_labels if notice.alerts else notice.labels
    group = ", ".join(f'{name}="{value}"' for name, value in sorted(group_labels.items()))
    return {
        "version": "4",
        "groupKey": f"{{}}:{{{group}}}",
        "truncatedAlerts": 0,
        "status": notice.status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common([member.labels for member in members]),
        "commonAnnotations": _common([member.annotations for member in members]),
        "externalURL": notice.external_url,
        "alerts": [alert_body(member) for member in members],
    }


def _common(mappings: list[dict[str, str]]) -> dict[str, str]:
    """What every mapping has, with the same value."""
    first, *others = mappings
    return {k: v for k, v in first.items() if all(other.get(k) == v for other in others)}


class WebhookSender:
    batch_size = 1

    def __init__(self, spec: ReceiverSpec) -> None:
        self._name = spec.name
        self._poster = JsonPoster(spec.url, spec.shown_url, spec.timing.timeout, spec.headers)

    def send(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self._poster.post(webhook_payload(self._name, notice), notice.key)

    def close(self) -> None:
        self._poster.close()
