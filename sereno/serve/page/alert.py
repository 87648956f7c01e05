"""One alert's page: what it is and how it stands, its minutes (a table and a sparkline), the
notifications sent of it, who has it, the silences that select it and, for a majority alert,
the servers that matched."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.serve.answers import AlertDetail, AlertMinute, RulesAnswer, SilenceAnswer
from sereno.serve.page.alerts import marks, servers_count
from sereno.serve.page.markup import (
    clock,
    esc,
    number,
    sev_badge,
    sev_style,
    severity_colors,
    table,
    when,
)

SPARK_WIDTH, SPARK_HEIGHT = 240, 40


def alert_view(detail: AlertDetail, rules: RulesAnswer) -> str:
    colors = severity_colors(rules)
    alert, episode = detail.alert, detail.episode
    if alert is not None:
        rule, severity, service, server = alert.rule, alert.severity, alert.service, alert.server
        state, since, value, alert_id = alert.state, alert.since, alert.value, alert.id
        shown_marks = marks(alert)
        matched = alert.matched_servers
    elif episode is not None:
        rule, severity, service, server = (
            episode.rule,
            episode.severity,
            episode.service,
            episode.server,
        )
        state, value, alert_id = "resolved", episode.peak, episode.id
        since = episode.fired if episode.fired is not None else episode.started
        shown_marks = ""
        matched = getattr(episode.last, "matched_servers", None)
    else:
        return '<p class="empty">Nothing is known of this alert.</p>'
    where = esc(server) if server is not None else "most servers"
    if alert is not None and alert.server is None:
        where = esc(servers_count(alert))
    head = (
        f'<h2>{esc(rule)}</h2><div class="alert-head state-{esc(state.replace(" ", "-"))}"'
        f' data-alert-id="{esc(alert_id)}"{sev_style(colors.get(severity))}>'
        f"<p>{sev_badge(severity, colors)} "
        f'<span class="state">{esc(state)}</span> on {esc(service)}, {where}, '
        f"since {when(since)}; value {number(value)} {shown_marks}</p></div>"
    )
    sections = [
        _section("Minutes", minutes(detail.minutes)),
        _section("Notifications", notifications(detail)),
        _section("Acknowledgement", acknowledgement(detail)),
        _section("Silences", silences(detail.silences)),
    ]
    if matched is not None:
        listed = "".join(f"<li>{esc(name)}</li>" for name in matched)
        sections.append(
            _section("Matched servers", f'<ul aria-label="Matched servers">{listed}</ul>')
        )
    return head + "".join(sections)


def _section(title: str, body: str) -> str:
    return f"<section><h3>{esc(title)}</h3>{body}</section>"


def minutes(rows: Sequence[AlertMinute]) -> str:
    if not rows:
        return '<p class="empty">No minute of it is kept.</p>'
    body = (
        f"<tr><td>{clock(row.minute)}</td>"
        f'<td class="number">{number(row.value)}</td>'
        f"<td>{'yes' if row.matched else 'no'}</td>"
        f"<td>{esc(row.severity)}</td><td>{esc(row.state)}</td></tr>"
        for row in rows
    )
    heads = ("Minute (UTC)", "Value", "Matched", "Severity", "State")
    return sparkline(rows) + table("", heads, body)


def sparkline(rows: Sequence[AlertMinute]) -> str:
    """The minutes' values as a line; a minute without a sample breaks it."""
    values = [row.value for row in rows if row.value is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    spread = high - low
    step = SPARK_WIDTH / max(len(rows) - 1, 1)
    lines: list[list[str]] = []
    points: list[str] = []
    for index, row in enumerate(rows):
        if row.value is None:
            lines.append(points)
            points = []
            continue
        share = (row.value - low) / spread if spread else 0.5  # a flat line in the middle
        y = SPARK_HEIGHT - 2 - share * (SPARK_HEIGHT - 4)
        points.append(f"{index * step:.1f},{y:.1f}")
    lines.append(points)
    drawn = "".join(f'<polyline points="{" ".join(line)}"></polyline>' for line in lines if line)
    label = f"Values over {len(rows)} minutes, from {number(low)} to {number(high)}"
    return (
        f'<svg class="sparkline" role="img" aria-label="{esc(label)}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" width="{SPARK_WIDTH}" '
        f'height="{SPARK_HEIGHT}">{drawn}</svg>'
    )


def notifications(detail: AlertDetail) -> str:
    if not detail.notifications:
        return '<p class="empty">No notification was sent of it.</p>'
    rows = (
        f"<tr><td>{esc(sent.receiver)}</td><td>{when(sent.at)}</td><td>{esc(sent.change)}</td>"
        f'<td class="outcome-{esc(sent.outcome)}">{esc(sent.outcome)}</td>'
        f"<td>{esc(sent.title)}</td><td>{esc(sent.detail)}</td></tr>"
        for sent in detail.notifications
    )
    heads = ("Receiver", "At (UTC)", "Told", "Outcome", "Title", "Detail")
    return table("", heads, rows)


def acknowledgement(detail: AlertDetail) -> str:
    ack = detail.ack
    if ack is None:
        return '<p class="ack">Nobody has acknowledged it.</p>'
    comment = f": {esc(ack.comment)}" if ack.comment else ""
    return (
        f'<p class="ack">Acknowledged by {esc(ack.by)} at {when(ack.at)} '
        f"(at {esc(ack.severity)}){comment}</p>"
    )


def silences(listed: Sequence[SilenceAnswer]) -> str:
    if not listed:
        return '<p class="empty">No silence selects it.</p>'
    items = "".join(
        f"<li>{esc(silence.state)}: <code>{esc(', '.join(silence.matchers))}</code> until "
        f"{when(silence.ends_at)}, by {esc(silence.created_by)}: {esc(silence.comment)}</li>"
        for silence in listed
    )
    return f"<ul>{items}</ul>"
