"""`GET /`, the web page, and what it loads: `/static/{name}` (its script and style sheet,
shipped in the package) and `/favicon.ico`.

The page is rendered on the server from the same answers the JSON API gives, so that it
works read-only without scripts; the script then renders each view from the API and keeps
it live. With tokens, the page and its files are open, but the page shows data only to a
request carrying a valid token (the script sends it on every request).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from importlib import resources
from typing import NamedTuple, Protocol

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from sereno.engine.records import EpisodeRecord
from sereno.serve.answers import (
    AlertDetail,
    FleetAnswer,
    OpenAlert,
    ReceiverAnswer,
    RulesAnswer,
    ServiceStatus,
    SilenceListAnswer,
)
from sereno.serve.auth import carries_token
from sereno.serve.page.admin import receivers_view, silences_view
from sereno.serve.page.alert import alert_view
from sereno.serve.page.alerts import alerts_view
from sereno.serve.page.fleet import fleet_view
from sereno.serve.page.history import history_view
from sereno.serve.page.markup import clock
from sereno.serve.page.query import (
    PageQuery,
    PageQueryError,
    history_period,
    parse_query,
)
from sereno.serve.page.skeleton import REFRESH_SECONDS, refused, skeleton, token_needed
from sereno.state.store import HistoryQuery

HISTORY_LIMIT = 1000  # episodes in a view of the history, as the script asks for
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# a bell, drawn inline: the browser asks for an icon whatever the page says
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<path fill="#1f4e79" d="M8 1a1 1 0 0 1 1 1v.6A4.5 4.5 0 0 1 12.5 7v3l1.5 2H2l1.5-2V7'
    b'A4.5 4.5 0 0 1 7 2.6V2a1 1 0 0 1 1-1zM6.5 13h3a1.5 1.5 0 0 1-3 0z"/></svg>'
)


class PageSource(Protocol):
    """What the page shows, as the JSON API answers it."""

    def status_answer(self) -> ServiceStatus: ...
    def rules_answer(self) -> RulesAnswer: ...
    def fleet_answer(self, service: str | None) -> FleetAnswer: ...
    def alert_detail(self, alert_id: str) -> AlertDetail | None: ...
    def open_alerts(self) -> list[OpenAlert]: ...
    def history_records(self, query: HistoryQuery) -> list[EpisodeRecord]: ...
    def receivers_answer(self) -> list[ReceiverAnswer]: ...


class StaticFile(NamedTuple):
    content: bytes
    content_type: str
    etag: str


def static_files() -> dict[str, StaticFile]:
    """The page's files, by name, read once from the package."""
    folder = resources.files("sereno.serve") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            content = entry.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:20] + '"'
            files[entry.name] = StaticFile(content, CONTENT_TYPES[suffix], etag)
    return files


class WebPage:
    """The handlers of `/`, `/static/{name}` and `/favicon.ico`."""

    def __init__(
        self,
        source: PageSource,
        silences: Callable[[], SilenceListAnswer],
        tokens: frozenset[str],
    ) -> None:
        self._source = source
        self._silences = silences
        self._tokens = tokens

    def page(self, request: Request) -> Response:
        required = bool(self._tokens)
        try:
            query = parse_query(request.query_params.multi_items())
        except PageQueryError as error:
            page = skeleton("Sereno: not a page", "", refused(str(error)), required)
            return HTMLResponse(page, status_code=400)
        if required and not carries_token(request.headers, self._tokens):
            return HTMLResponse(skeleton("Sereno", query.view, token_needed(), required))
        view = self._view(query)
        if view is None:
            main = refused(f"no alert has the id {query.alert_id}")
            return HTMLResponse(skeleton("Sereno", query.view, main, required), status_code=404)
        title, main = view
        status = f"Shown at {clock(time.time())} UTC; reloads every {REFRESH_SECONDS} s."
        return HTMLResponse(skeleton(title, query.view, main, required, status))

    def _view(self, query: PageQuery) -> tuple[str, str] | None:
        """The view's title and its HTML; None for an alert nobody knows."""
        views = {
            "alerts": self._alerts,
            "fleet": self._fleet,
            "history": self._history,
            "alert": self._alert,
            "silences": self._silences_view,
            "receivers": self._receivers,
        }
        return views[query.view](query)

    def _alerts(self, query: PageQuery) -> tuple[str, str]:
        alerts = self._source.open_alerts()
        return _alerts_title(alerts), alerts_view(alerts, self._source.rules_answer(), query.alerts)

    def _fleet(self, query: PageQuery) -> tuple[str, str]:
        fleet = self._source.fleet_answer(query.service)
        return "Sereno: fleet", fleet_view(fleet, query.service)

    def _history(self, query: PageQuery) -> tuple[str, str]:
        """The period asked, or the last hours the service has evaluated (event time)."""
        source, filters = self._source, query.history
        now = source.status_answer().evaluated_before or time.time()
        since, until = history_period(filters, now)
        asked = HistoryQuery(
            since=since,
            rule=filters.rule,
            limit=HISTORY_LIMIT,
            until=until,
            service=filters.service,
            severity=filters.severity,
        )
        page = history_view(
            source.history_records(asked), source.rules_answer(), filters, (since, until)
        )
        return "Sereno: history", page

    def _alert(self, query: PageQuery) -> tuple[str, str] | None:
        detail = self._source.alert_detail(query.alert_id)
        if detail is None:
            return None
        return "Sereno: alert", alert_view(detail, self._source.rules_answer())

    def _silences_view(self, query: PageQuery) -> tuple[str, str]:
        return "Sereno: silences", silences_view(self._silences(), self._source.open_alerts())

    def _receivers(self, query: PageQuery) -> tuple[str, str]:
        receivers = self._source.receivers_answer()
        return "Sereno: receivers", receivers_view(receivers, self._source.status_answer())


class PageFiles:
    """The handlers of `/static/{name}` and `/favicon.ico`: the page's files, read once."""

    def __init__(self) -> None:
        self._files = static_files()

    def static(self, name: str, request: Request) -> Response:
        """A file of the page; 304 when the browser has this version of it already."""
        found = self._files.get(name)
        if found is None:
            return Response("no such file\n", status_code=404, media_type="text/plain")
        headers = {"etag": found.etag, "cache-control": "no-cache"}
        if found.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(found.content, media_type=found.content_type, headers=headers)

    def favicon(self) -> Response:
        return Response(
            FAVICON, media_type="image/svg+xml", headers={"cache-control": "max-age=86400"}
        )


def _alerts_title(alerts: list[OpenAlert]) -> str:
    firing = sum(alert.state == "firing" for alert in alerts)
    pending = sum(alert.state == "pending" for alert in alerts)
    no_data = sum(alert.state == "no data" for alert in alerts)
    title = f"Sereno: {firing} firing, {pending} pending"
    return title + (f", {no_data} without data" if no_data else "")
