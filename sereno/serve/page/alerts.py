"""The open alerts: firing, then without data, then pending; the loud ones first and the
quiet ones (silenced, acknowledged, inhibited, flapping) folded below them."""

from __future__ import annotations

from collections.abc import Sequence

from sereno.serve.answers import OpenAlert, RulesAnswer
from sereno.serve.page.markup import (
    esc,
    field,
    mark,
    number,
    options,
    sev_badge,
    sev_style,
    severity_colors,
    table,
    when,
)
from sereno.serve.page.query import STATES, AlertFilters

HEADS = ("Severity", "State", "Rule", "Service", "Where", "Since (UTC)", "Value", "Marks")


def alerts_view(alerts: Sequence[OpenAlert], rules: RulesAnswer, filters: AlertFilters) -> str:
    colors = severity_colors(rules)
    shown = in_order([alert for alert in alerts if matches(alert, filters)])
    loud = [alert for alert in shown if not is_quiet(alert)]
    quiet = [alert for alert in shown if is_quiet(alert)]
    if not alerts:
        listing = '<p class="empty">No alert is open: none firing, pending or without data.</p>'
    elif not shown:
        listing = '<p class="empty">No open alert matches these filters.</p>'
    else:
        listing = _table(loud, colors) if loud else '<p class="empty">No loud alert.</p>'
    if quiet:
        listing += (
            f'<details class="quiet-alerts"><summary>Quiet alerts ({len(quiet)})</summary>'
            f"{_table(quiet, colors)}</details>"
        )
    return f"<h2>Open alerts</h2>{filter_form(alerts, rules, filters)}{listing}"


def in_order(alerts: Sequence[OpenAlert]) -> list[OpenAlert]:
    """Firing, then without data, then pending; the earliest first within each."""
    return sorted(alerts, key=lambda alert: (_STATE_ORDER.get(alert.state, 3), alert.since))


_STATE_ORDER = {state: index for index, state in enumerate(STATES)}


def is_quiet(alert: OpenAlert) -> bool:
    """Whether people are not told of it now: silenced, acknowledged, inhibited, flapping."""
    return bool(alert.silenced_by) or alert.ack is not None or alert.inhibited or alert.flapping


def matches(alert: OpenAlert, filters: AlertFilters) -> bool:
    chosen = (
        (filters.severity, alert.severity),
        (filters.service, alert.service),
        (filters.rule, alert.rule),
        (filters.state, alert.state),
    )
    if any(values and value not in values for values, value in chosen):
        return False
    labels = (alert.rule, alert.severity, alert.service, alert.server or "")
    return filters.q.casefold() in " ".join(labels).casefold()


def filter_form(alerts: Sequence[OpenAlert], rules: RulesAnswer, filters: AlertFilters) -> str:
    severities = [severity.name for severity in rules.severities]
    services = sorted({alert.service for alert in alerts} | set(filters.service))
    rule_names = [rule.name for rule in rules.rules]
    selects = (
        ("severity", "Severity", severities, filters.severity),
        ("service", "Service", services, filters.service),
        ("rule", "Rule", rule_names, filters.rule),
        ("state", "State", STATES, filters.state),
    )
    fields = "".join(
        field(
            name,
            label,
            f'<select id="f-{name}" name="{name}" multiple size="4">'
            f"{options(values, chosen)}</select>",
        )
        for name, label, values, chosen in selects
    )
    search = f'<input id="f-q" name="q" type="search" value="{esc(filters.q)}">'
    return (
        '<form role="search" aria-label="Filter alerts" method="get" action="/" class="filters">'
        f'<input type="hidden" name="view" value="alerts">{fields}{field("q", "Search", search)}'
        '<button type="submit" class="no-script">Filter</button></form>'
    )


def _table(alerts: Sequence[OpenAlert], colors: dict[str, str]) -> str:
    return table("", HEADS, (alert_row(alert, colors) for alert in alerts))


def alert_row(alert: OpenAlert, colors: dict[str, str]) -> str:
    state = alert.state.replace(" ", "-")
    cells = (
        f"<td>{sev_badge(alert.severity, colors)}</td>",
        f'<td class="state">{esc(alert.state)}</td>',
        f'<td><a href="/?view=alert&amp;id={esc(alert.id)}">{esc(alert.rule)}</a></td>',
        f"<td>{esc(alert.service)}</td>",
        f"<td>{where(alert)}</td>",
        f"<td>{when(alert.since)}</td>",
        f'<td class="number">{number(alert.value)}</td>',
        f"<td>{marks(alert)}</td>",
    )
    return (
        f'<tr class="alert state-{state}" id="alert-{esc(alert.id)}" '
        f'data-alert-id="{esc(alert.id)}" data-state="{esc(alert.state)}"'
        f"{sev_style(colors.get(alert.severity))}>{''.join(cells)}</tr>"
    )


def where(alert: OpenAlert) -> str:
    """Its server; for a majority alert, how many servers matched, and which."""
    if alert.server is not None:
        return esc(alert.server)
    matched = alert.matched_servers or []
    listed = "".join(f"<li>{esc(server)}</li>" for server in matched)
    return (
        f'<details class="servers"><summary>{esc(servers_count(alert))}</summary>'
        f"<ul>{listed}</ul></details>"
    )


def servers_count(alert: OpenAlert) -> str:
    """`3 of 5 servers` for a majority alert."""
    matched = len(alert.matched_servers or [])
    active = alert.active_servers
    if active is None:
        active = matched + len(alert.unmatched_servers or [])
    return f"{matched} of {active} servers"


def marks(alert: OpenAlert) -> str:
    """Why people are, or are not, told of it now, as small badges."""
    shown = []
    if alert.state == "no data" or alert.no_data_since is not None:
        shown.append(mark("no-data", "no data"))
    if alert.silenced_by:
        shown.append(mark("silenced", "silenced", "by " + ", ".join(alert.silenced_by)))
    if alert.ack is not None:
        shown.append(mark("acked", f"acknowledged by {alert.ack.by}", alert.ack.comment))
    if alert.inhibited:
        shown.append(mark("inhibited", "inhibited"))
    if alert.flapping:
        shown.append(mark("flapping", "flapping"))
    if alert.in_maintenance is not None:
        shown.append(mark("maintenance", "in maintenance", alert.in_maintenance))
    return " ".join(shown)
