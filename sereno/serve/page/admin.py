"""The silences (what each mutes now) and the receivers (what their delivery has done), with
what the service runs."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.serve.answers import (
    OpenAlert,
    ReceiverAnswer,
    ServiceStatus,
    SilenceAnswer,
    SilenceListAnswer,
)
from sereno.serve.page.markup import esc, table, when

NOTHING = '<span class="muted">nothing</span>'
SILENCE_HEADS = ("Matchers", "Created by", "Comment", "Starts (UTC)", "Ends (UTC)", "Mutes now")
RECEIVER_HEADS = (
    "Receiver",
    "Type",
    "Queued",
    "Sent",
    "Failed attempts",
    "Retried",
    "Dropped",
    "Last sent (UTC)",
    "Last error",
)


def silences_view(listing: SilenceListAnswer, alerts: Sequence[OpenAlert]) -> str:
    def rows(silences: Sequence[SilenceAnswer]) -> str:
        return table("", SILENCE_HEADS, (silence_row(silence, alerts) for silence in silences))

    active = rows(listing.active) if listing.active else '<p class="empty">None.</p>'
    pending = rows(listing.pending) if listing.pending else '<p class="empty">None.</p>'
    expired = (
        f"<details><summary>Expired ({len(listing.expired)})</summary>"
        f"{rows(listing.expired)}</details>"
        if listing.expired
        else ""
    )
    return (
        f"<h2>Silences</h2><section><h3>Active</h3>{active}</section>"
        f"<section><h3>Pending</h3>{pending}</section>{expired}"
    )


def silence_row(silence: SilenceAnswer, alerts: Sequence[OpenAlert]) -> str:
    muted = [alert for alert in alerts if silence.id in alert.silenced_by]
    mutes = ", ".join(
        f'<a href="/?view=alert&amp;id={esc(alert.id)}">{esc(alert.rule)} '
        f"on {esc(alert.server or alert.service)}</a>"
        for alert in muted
    )
    matchers = "".join(f"<li><code>{esc(matcher)}</code></li>" for matcher in silence.matchers)
    cells = (
        f'<td><ul class="matchers">{matchers}</ul></td>',
        f"<td>{esc(silence.created_by)}</td>",
        f"<td>{esc(silence.comment)}</td>",
        f"<td>{when(silence.starts_at)}</td>",
        f"<td>{when(silence.expired_at or silence.ends_at)}</td>",
        f"<td>{mutes or NOTHING}</td>",
    )
    return (
        f'<tr data-silence-id="{esc(silence.id)}" data-state="{esc(silence.state)}">'
        f"{''.join(cells)}</tr>"
    )


def receivers_view(receivers: Sequence[ReceiverAnswer], status: ServiceStatus) -> str:
    if receivers:
        listing = table("", RECEIVER_HEADS, (receiver_row(receiver) for receiver in receivers))
    else:
        listing = '<p class="empty">No receiver is told of alerts (see <code>--config</code>).</p>'
    return f"<h2>Receivers</h2>{listing}{service_status(status)}"


def receiver_row(receiver: ReceiverAnswer) -> str:
    counts = (receiver.queued, receiver.sent, receiver.failed, receiver.retried, receiver.dropped)
    error = ""
    if receiver.last_error is not None:
        at = f" ({when(receiver.last_error_at)})" if receiver.last_error_at is not None else ""
        error = f"{esc(receiver.last_error)}{at}"
    sent = when(receiver.last_sent_at) if receiver.last_sent_at is not None else ""
    return (
        f'<tr data-receiver="{esc(receiver.name)}"><th scope="row">{esc(receiver.name)}</th>'
        f"<td>{esc(receiver.type)}</td>"
        + "".join(f'<td class="number">{count:,}</td>' for count in counts)
        + f'<td>{sent}</td><td class="last-error">{error}</td></tr>'
    )


def service_status(status: ServiceStatus) -> str:
    counts = status.counts
    rows = (
        ("events evaluated", counts.events_evaluated),
        ("late events", counts.late_events),
        ("events ahead of the fleet", counts.ahead_events),
        ("evaluation errors", counts.evaluation_errors),
        ("minutes evaluated", counts.windows_evaluated),
        ("condition errors", counts.condition_errors),
    )
    cells = "".join(
        f'<tr><th scope="row">{name}</th><td class="number">{value:,}</td></tr>'
        for name, value in rows
    )
    evaluated = (
        f", every minute before {when(status.evaluated_before)} evaluated"
        if status.evaluated_before is not None
        else ""
    )
    return (
        f"<section><h3>The service</h3><p>Sereno {esc(status.version)}, "
        f"{status.rules} rules from <code>{esc(status.source)}</code>{evaluated}.</p>"
        f'<div class="table-wrap"><table class="data counts">{cells}</table></div></section>'
    )
