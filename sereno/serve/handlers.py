"""`sereno serve`'s request handlers: the open alerts and their history, the dead
letters, rules reload, the page's readings (status, rules, fleet, one alert), health and
metrics (ingest is `ingest.py`, the web page itself `webpage.py`).

A thin adapter: what the evaluator publishes and the state file keeps is turned into HTTP
answers here.
"""

from __future__ import annotations

import msgspec
from fastapi import Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sereno.engine.lifecycle import Episode
from sereno.errors import RefusedFile
from sereno.live.fleet import FleetView
from sereno.serve.answers import (
    JSON,
    Problem,
    RulesRefused,
    RulesReloaded,
    Status,
    json_answer,
)
from sereno.serve.config import ServerConfig
from sereno.serve.params import (
    AlertId,
    HistoryLimit,
    RuleName,
    ServiceName,
    SeverityName,
    Since,
    Until,
    since_seconds,
    until_seconds,
)
from sereno.serve.readings import Readings, Served, fleet_answer
from sereno.state.store import (
    DEFAULT_HISTORY_LIMIT,
    HistoryQuery,
    read_dead_letters,
    read_history,
)


class Api(Readings):
    """The handlers, each a method; `create_app` routes to them. The records they answer
    with are built by `Readings`, whose methods the page calls too."""

    def __init__(self, served: Served, config: ServerConfig) -> None:
        super().__init__(served, config)
        self._metrics = served.metrics
        self._reload_rules = served.reload_rules
        self._encoder = msgspec.json.Encoder()
        self._alerts_page: tuple[list[Episode], bytes] = ([], b"[]")  # the latest published
        self._fleet_page: tuple[FleetView | None, str | None, bytes] = (None, None, b"")

    def _problem(self, status: int, message: str) -> Response:
        return json_answer(status, Problem(message))

    def alerts(self) -> Response:
        latest = self._live.alerts()
        notifications = self._notifications
        if (
            notifications.silences.any_active()
            or notifications.acks.any()
            or notifications.config.maintenance_windows
        ):  # what is silenced changes with time, what is acknowledged with requests
            return Response(self._encoder.encode(self._open_alerts(latest)), media_type=JSON)
        published, page = self._alerts_page
        if latest is not published:  # encoded once for each list the evaluator publishes
            page = self._encoder.encode(self._open_alerts(latest))
            self._alerts_page = latest, page
        return Response(page, media_type=JSON)

    def history(
        self,
        since: Since = None,
        rule: RuleName = None,
        limit: HistoryLimit = DEFAULT_HISTORY_LIMIT,
        until: Until = None,
        service: ServiceName = None,
        severity: SeverityName = None,
    ) -> Response:
        try:
            query = HistoryQuery(
                since_seconds(since), rule, limit, until_seconds(until), service, severity
            )
        except ValueError as error:
            return self._problem(400, str(error))
        return Response(read_history(self._config.db, query), media_type=JSON)

    def status(self) -> Response:
        return json_answer(200, self.status_answer())

    def rules(self) -> Response:
        return json_answer(200, self.rules_answer())

    def fleet(self, service: ServiceName = None) -> Response:
        fleet = self._live.fleet()
        shown, asked, page = self._fleet_page
        if fleet is not shown or service != asked:  # the page asks again and again
            page = self._encoder.encode(fleet_answer(fleet, service))
            self._fleet_page = fleet, service, page
        return Response(page, media_type=JSON)

    def alert(self, alert_id: AlertId) -> Response:
        detail = self.alert_detail(alert_id)
        if detail is None:
            return self._problem(
                404, f"no open alert nor episode of the history has the id {alert_id}"
            )
        return json_answer(200, detail)

    def dead_letters(self) -> Response:
        return json_answer(200, read_dead_letters(self._config.db))

    def reload(self) -> Response:
        try:
            ruleset = self._reload_rules()
        except TimeoutError as error:
            return self._problem(503, str(error))
        except RefusedFile as error:
            refused = f"the {error.what} is refused, the old rules and receivers keep running"
            return json_answer(400, RulesRefused(refused, error.problems))
        receivers = len(self._notifications.config.receivers)
        answer = RulesReloaded("reloaded", ruleset.source, len(ruleset.rules), receivers)
        return json_answer(200, answer)

    def healthz(self) -> Response:
        return json_answer(200, Status("ok"))

    def readyz(self) -> Response:
        if not self._live.running:
            return self._problem(503, "the evaluator is not running")
        return json_answer(200, Status("ready"))

    def metrics(self) -> Response:
        return Response(generate_latest(self._metrics.registry), media_type=CONTENT_TYPE_LATEST)
