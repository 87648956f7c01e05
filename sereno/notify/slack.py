"""Slack: an incoming-webhook message, an attachment coloured by severity (green once
resolved)."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import RESOLVED, Notice
from sereno.notify.transport import JsonPoster
from sereno.rules.rulefmt import css_color
from sereno.text import format_number

RESOLVED_COLOR = "#2eb886"
DEFAULT_COLOR = "#a0a0a0"


def hex_color(name: str | None) -> str:
    """A severity's colour, as the rules file names it (`magenta`, `#ff8800`), in hex."""
    return css_color(name) or DEFAULT_COLOR


MAX_ATTACHMENTS = 20  # of a group's message: Slack shows a long list badly


def slack_message(notice: Notice, channel: str | None) -> dict[str, object]:
    """A message with an attachment per alert: one, or those of a group (the first 20)."""
    members = notice.alerts or (notice,)
    attachments = [_attachment(member) for member in members[:MAX_ATTACHMENTS]]
    text = notice.title
    if notice.alerts:
        text += f" - {notice.summary}"
        if len(members) > MAX_ATTACHMENTS:
            text += f" (the first {MAX_ATTACHMENTS} shown)"
    message: dict[str, object] = {"text": text, "attachments": attachments}
    if channel:
        message["channel"] = channel
    return message


def _attachment(notice: Notice) -> dict[str, object]:
    fields = [("Service", notice.service), ("Server", notice.server)]
    if notice.component:
        fields.append(("Value", format_number(notice.value)))
    fields += [("Alert id", notice.alert_id), ("Acknowledged by", notice.acked_by or "")]
    attachment: dict[str, object] = {
        "fallback": f"{notice.title}: {notice.text}",
        "color": RESOLVED_COLOR if notice.status == RESOLVED else hex_color(notice.color),
        "title": notice.title,
        "text": notice.text,
        "fields": [
            {"title": title, "value": value, "short": True} for title, value in fields if value
        ],
        "footer": "Sereno",
        "ts": notice.at,
    }
    if notice.external_url:
        attachment["title_link"] = notice.external_url
    return attachment


class SlackSender:
    batch_size = 1

    def __init__(self, spec: ReceiverSpec) -> None:
        self._channel = spec.channel
        self._poster = JsonPoster(spec.url, spec.shown_url, spec.timing.timeout)

    def send(self, notices: Sequence[Notice]) -> None:
        for notice in notices:
            self._poster.post(slack_message(notice, self._channel), notice.key)

    def close(self) -> None:
        self._poster.close()
