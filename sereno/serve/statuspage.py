"""`GET /`: a status page for people, what is firing now at a glance.

Plain HTML, rendered on the server, with no script and nothing fetched from elsewhere, so it
works on a host without internet access; it reloads itself every few seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from typing import NamedTuple

from sereno import __version__
from sereno.notify.delivery import ReceiverCounts
from sereno.rules.rulefmt import RuleSet
from sereno.serve.answers import OpenAlert

REFRESH_SECONDS = 10
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.5em; }
p.about { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { text-align: left; padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }
th { background: #f4f4f4; }
td.firing { color: #b00; font-weight: bold; }
td.pending { color: #a60; }
td.no-data { color: #555; font-weight: bold; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
"""


class ReceiverRow(NamedTuple):
    name: str
    type: str
    queued: int
    counts: ReceiverCounts


def render(
    alerts: Sequence[OpenAlert],
    ruleset: RuleSet,
    counts: dict[str, int],
    receivers: Sequence[ReceiverRow] = (),
) -> str:
    """The page: what the service runs, its counts, the open alerts (firing first) and the
    receivers told of them."""
    states = Counter(alert.state for alert in alerts)
    title = f"Sereno: {states['firing']} firing, {states['pending']} pending"
    if states["no data"]:
        title += f", {states['no data']} without data"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="about">Sereno {escape(__version__)}, {len(ruleset.rules)} rules from
{escape(ruleset.source)}; shown at {_utc(datetime.now(timezone.utc).timestamp())}.
{_links()}</p>
{_counts(counts)}
{_alerts(alerts)}
{_receivers(receivers)}
</body>
</html>
"""


def _links() -> str:
    paths = ("/alerts", "/alerts/history", "/metrics", "/openapi.json")
    return " · ".join(f'<a href="{path}">{path}</a>' for path in paths)


def _counts(counts: dict[str, int]) -> str:
    cells = "".join(
        f'<tr><th>{escape(name)}</th><td class="number">{value:,}</td></tr>'
        for name, value in counts.items()
    )
    return f"<table>{cells}</table>"


def _alerts(alerts: Sequence[OpenAlert]) -> str:
    if not alerts:
        return "<p>No alert is open: none firing, pending or without data.</p>"
    heads = ("id", "state", "rule", "severity", "service", "where", "since (UTC)", "value")
    head = "".join(f"<th>{name}</th>" for name in heads)
    in_order = sorted(alerts, key=lambda alert: _STATE_ORDER.get(alert.state, 3))  # stable
    return f"<table><tr>{head}</tr>{''.join(map(_alert_row, in_order))}</table>"


_STATE_ORDER = {"firing": 0, "no data": 1, "pending": 2}


def _alert_row(alert: OpenAlert) -> str:
    if alert.server is not None:
        where = alert.server
    else:
        where = f"most servers, over {alert.threshold}" if alert.threshold else "most servers"
        if alert.matched_servers:
            where += f": {', '.join(alert.matched_servers)}"
    marks = [mark for mark in ("flapping", "inhibited") if getattr(alert, mark)]
    if alert.no_data_since is not None:
        marks.append(f"no data since {_utc(alert.no_data_since)}")
    if alert.silenced_by:
        marks.append(f"silenced ({', '.join(alert.silenced_by)})")
    if alert.ack is not None:
        marks.append(f"acknowledged by {alert.ack.by}")
    if alert.in_maintenance is not None:
        marks.append(f"in maintenance ({alert.in_maintenance})")
    state = ", ".join([alert.state, *marks])
    cells = (
        f"<td><code>{escape(alert.id)}</code></td>",
        f'<td class="{escape(alert.state.replace(" ", "-"))}">{escape(state)}</td>',
        f"<td>{escape(alert.rule)}</td>",
        f"<td>{escape(alert.severity)}</td>",
        f"<td>{escape(alert.service)}</td>",
        f"<td>{escape(where)}</td>",
        f"<td>{_utc(alert.since)}</td>",
        f'<td class="number">{alert.value:g}</td>',
    )
    return f"<tr>{''.join(cells)}</tr>"


def _receivers(receivers: Sequence[ReceiverRow]) -> str:
    if not receivers:
        return "<p>No receiver is told of alerts (see <code>--config</code>).</p>"
    heads = ("receiver", "type", "queued", "sent", "failed attempts", "dropped")
    head = "".join(f"<th>{name}</th>" for name in heads)
    rows = "".join(
        f"<tr><td>{escape(row.name)}</td><td>{escape(row.type)}</td>"
        + "".join(
            f'<td class="number">{value:,}</td>'
            for value in (row.queued, row.counts.sent, row.counts.failed, row.counts.dropped)
        )
        + "</tr>"
        for row in receivers
    )
    return f"<h2>Notifications</h2><table><tr>{head}</tr>{rows}</table>"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
