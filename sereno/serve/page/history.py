"""The history: the episodes of a period as a timeline, one row each with a bar from when it
fired to when it resolved (or to now), and the same as a table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from sereno.engine.records import EpisodeRecord
from sereno.serve.answers import RulesAnswer
from sereno.serve.page.markup import (
    esc,
    field,
    hour_minute,
    number,
    options,
    sev_badge,
    sev_style,
    severity_colors,
    table,
    when,
)
from sereno.serve.page.query import HistoryFilters

HEADS = ("Rule", "Severity", "Service", "Server", "Fired (UTC)", "Resolved (UTC)", "Peak", "Ended")
MIN_BAR = 0.5  # percent: an episode of a minute in a long period is still seen


def history_view(
    records: Sequence[EpisodeRecord],
    rules: RulesAnswer,
    filters: HistoryFilters,
    period: tuple[float, float],
) -> str:
    colors = severity_colors(rules)
    form = filter_form(rules, filters, period)
    if not records:
        return f'<h2>History</h2>{form}<p class="empty">No alert fired in this period.</p>'
    rows = "".join(timeline_row(record, colors, period) for record in records)
    since, until = period
    timeline = (
        '<section aria-label="Timeline" class="timeline">'
        f'<div class="axis"><span>{when(since)}</span><span>{when(until)}</span></div>'
        f"{rows}</section>"
    )
    listing = table("Episodes", HEADS, (_record_row(record, colors) for record in records))
    return f"<h2>History</h2>{form}{timeline}{listing}"


def filter_form(rules: RulesAnswer, filters: HistoryFilters, period: tuple[float, float]) -> str:
    since, until = (_local_input(moment) for moment in period)
    rule_names = [rule.name for rule in rules.rules]
    severities = [severity.name for severity in rules.severities]
    fields = (
        field(
            "since",
            "From",
            f'<input id="f-since" name="since" type="datetime-local" '
            f'value="{since}" aria-describedby="utc-note">',
        ),
        field(
            "until",
            "To",
            f'<input id="f-until" name="until" type="datetime-local" '
            f'value="{until}" aria-describedby="utc-note">',
        ),
        field(
            "rule",
            "Rule",
            f'<select id="f-rule" name="rule">'
            f"{options(rule_names, [filters.rule or ''], 'Any')}</select>",
        ),
        field(
            "service",
            "Service",
            '<input id="f-service" name="service" type="text" '
            f'value="{esc(filters.service or "")}">',
        ),
        field(
            "severity",
            "Severity",
            f'<select id="f-severity" name="severity">'
            f"{options(severities, [filters.severity or ''], 'Any')}</select>",
        ),
    )
    return (
        '<form role="search" aria-label="Filter history" method="get" action="/" '
        'class="filters"><input type="hidden" name="view" value="history">'
        f"{''.join(fields)}"
        '<button type="submit" class="no-script">Filter</button>'
        '<p id="utc-note" class="muted note-inline">Times in UTC.</p></form>'
    )


def _local_input(moment: float) -> str:
    """A `datetime-local` input's value: `2026-11-29T09:30`, in UTC."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def span(record: EpisodeRecord, until: float) -> tuple[float, float]:
    """When it fired (or started, if it never fired) and when it ended, or `until`."""
    start = record.fired if record.fired is not None else record.started
    return start, (record.ended if record.ended is not None else until)


def describe(record: EpisodeRecord) -> str:
    """`hot on inbox_01: fired 09:30, resolved 09:41` (or `still firing`)."""
    start = record.fired if record.fired is not None else record.started
    ended = f"resolved {hour_minute(record.ended)}" if record.ended is not None else "still firing"
    return (
        f"{record.rule} on {record.server or record.service}: fired {hour_minute(start)}, {ended}"
    )


def timeline_row(record: EpisodeRecord, colors: dict[str, str], period: tuple[float, float]) -> str:
    since, until = period
    start, end = span(record, until)
    length = until - since
    left = min(max((start - since) / length * 100, 0.0), 100.0)
    right = min(max((end - since) / length * 100, 0.0), 100.0)
    width = max(right - left, MIN_BAR)
    label = describe(record)
    where = record.server or record.service
    return (
        f'<div class="episode" data-episode-id="{esc(record.id)}"'
        f"{sev_style(colors.get(record.severity))}>"
        f'<span class="episode-label" title="{esc(record.rule)} {esc(where)}">'
        f'<a href="/?view=alert&amp;id={esc(record.id)}">'
        f'{esc(record.rule)}</a> <span class="episode-where">{esc(where)}</span></span>'
        f'<span class="track"><span class="bar" role="img" title="{esc(label)}" '
        f'aria-label="{esc(label)}" style="left: {left:.2f}%; width: {width:.2f}%">'
        "</span></span></div>"
    )


def _record_row(record: EpisodeRecord, colors: dict[str, str]) -> str:
    start = record.fired if record.fired is not None else record.started
    ended = when(record.ended) if record.ended is not None else "still firing"
    cells = (
        f'<td><a href="/?view=alert&amp;id={esc(record.id)}">{esc(record.rule)}</a></td>',
        f"<td>{sev_badge(record.severity, colors)}</td>",
        f"<td>{esc(record.service)}</td>",
        f"<td>{esc(record.server or 'most servers')}</td>",
        f"<td>{when(start)}</td>",
        f"<td>{ended}</td>",
        f'<td class="number">{number(record.peak)}</td>',
        f"<td>{esc(record.ended_by or '')}</td>",
    )
    return f"<tr>{''.join(cells)}</tr>"
