"""A sender for each receiver type."""

from __future__ import annotations

from collections.abc import Callable

from sereno.notify.alertmanager import AlertmanagerSender
from sereno.notify.config import ReceiverSpec
from sereno.notify.email import EmailSender
from sereno.notify.slack import SlackSender
from sereno.notify.transport import Sender
from sereno.notify.webhook import WebhookSender

SENDERS: dict[str, Callable[[ReceiverSpec], Sender]] = {
    "webhook": WebhookSender,
    "alertmanager": AlertmanagerSender,
    "slack": SlackSender,
    "email": EmailSender,
}


def build_sender(spec: ReceiverSpec) -> Sender:
    return SENDERS[spec.type](spec)
