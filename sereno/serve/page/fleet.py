"""The fleet: a table per service, a row per server with its last report, whether it is
active and quiet, and the latest value of each component the rules read, marked when a rule
matches it."""

from __future__ import annotations

from sereno.serve.answers import FleetAnswer, ServerReading, ServiceReading
from sereno.serve.page.markup import ago, esc, field, mark, number, options, table


def fleet_view(fleet: FleetAnswer, service: str | None) -> str:
    services = [reading.service for reading in fleet.services]
    chosen = options(sorted(set(services) | ({service} if service else set())), [service or ""])
    form = (
        '<form role="search" aria-label="Filter fleet" method="get" action="/" class="filters">'
        '<input type="hidden" name="view" value="fleet">'
        + field(
            "service",
            "Service",
            f'<select id="f-service" name="service"><option value="">All</option>{chosen}</select>',
        )
        + '<button type="submit" class="no-script">Filter</button></form>'
    )
    if not fleet.services:
        empty = "No server has reported yet." if service is None else "No server of it reported."
        return f'<h2>Fleet</h2>{form}<p class="empty">{empty}</p>'
    tables = "".join(service_table(reading, latest_time(fleet)) for reading in fleet.services)
    return f"<h2>Fleet</h2>{form}{tables}"


def latest_time(fleet: FleetAnswer) -> float | None:
    """What a report's age is counted to: the latest minute evaluated, or the latest report if
    it came after (events of the minute being gathered)."""
    if fleet.evaluated_before is None:
        return None
    reports = [server.last_report for reading in fleet.services for server in reading.servers]
    return max([fleet.evaluated_before, *reports])


def service_table(reading: ServiceReading, now: float | None) -> str:
    components = sorted({c.component for server in reading.servers for c in server.components})
    heads = ("Server", "Last report", "Status", *components)
    rows = (server_row(server, components, now) for server in reading.servers)
    return table(reading.service, heads, rows, "data fleet")


def server_row(server: ServerReading, components: list[str], now: float | None) -> str:
    """A server's row: `quiet` when it has not reported for a while."""
    status = [mark("quiet", "quiet")] if server.quiet else []
    status.append(
        mark("passive", "passive") if not server.active else '<span class="muted">active</span>'
    )
    latest = {reading.component: reading for reading in server.components}
    cells = []
    for component in components:
        reading = latest.get(component)
        if reading is None:
            cells.append('<td class="number muted">none</td>')
        elif reading.matched_by:
            rules = ", ".join(reading.matched_by)
            cells.append(
                f'<td class="number matched" title="matched by {esc(rules)}">'
                f'{number(reading.value)}<span class="visually-hidden"> (matched by '
                f"{esc(rules)})</span></td>"
            )
        else:
            cells.append(f'<td class="number">{number(reading.value)}</td>')
    report = ago(now - server.last_report) if now is not None else ""
    quiet = ' class="quiet"' if server.quiet else ""
    return (
        f'<tr data-server="{esc(server.server)}"{quiet}><th scope="row">{esc(server.server)}</th>'
        f"<td>{report}</td><td>{' '.join(status)}</td>{''.join(cells)}</tr>"
    )
