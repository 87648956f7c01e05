"""What the page shows, as the API's typed records: the service's status, the rules, the
fleet, one alert with its minutes, notifications, acknowledgement and silences, the open
alerts and the history.

The JSON handlers (`handlers.Api`) encode these records, and the server-rendered page renders
them: both read the same values, built here from what the live engine last published, the
notifications and the state file.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

from sereno import __version__
from sereno.engine.lifecycle import Episode
from sereno.engine.records import EpisodeRecord
from sereno.engine.windows import WINDOW_SECONDS
from sereno.live.evaluator import Evaluation
from sereno.live.fleet import FleetView, ServerSeen
from sereno.notify.planner import record_labels
from sereno.notify.service import Notifications
from sereno.rules.rulefmt import RuleSet, RuleSpec, css_color
from sereno.serve.answers import (
    AckAnswer,
    AlertDetail,
    AlertMinute,
    ComponentReading,
    FleetAnswer,
    NotificationSent,
    OpenAlert,
    ReceiverAnswer,
    RuleAnswer,
    RulesAnswer,
    ServerReading,
    ServiceReading,
    ServiceStatus,
    SeverityAnswer,
    SilenceAnswer,
    StatusCounts,
)
from sereno.serve.config import ServerConfig
from sereno.serve.metrics import Metrics
from sereno.serve.reload import RulesReload
from sereno.state.store import (
    HistoryQuery,
    Journal,
    read_alert_minutes,
    read_deliveries,
    read_episode,
    read_history,
)


@dataclass(frozen=True)
class Served:
    """What the API serves, each handed in rather than reached through another."""

    live: Evaluation
    journal: Journal
    metrics: Metrics
    reload_rules: RulesReload
    notifications: Notifications  # its receivers change on a reload


class Readings:
    """The records the page reads, each built from what is published now."""

    def __init__(self, served: Served, config: ServerConfig) -> None:
        self._live = served.live
        self._notifications = served.notifications
        self._config = config
        self._history_decoder = msgspec.json.Decoder(list[EpisodeRecord])

    def receivers_answer(self) -> list[ReceiverAnswer]:
        return receiver_answers(self._notifications)

    def status_answer(self) -> ServiceStatus:
        live = self._live
        counts = StatusCounts(**asdict(live.stats))  # the same counters, by the same names
        ruleset = live.ruleset
        evaluated_before = live.evaluated_before
        return ServiceStatus(
            version=__version__,
            source=ruleset.source,
            rules=len(ruleset.rules),
            evaluated_before=evaluated_before if math.isfinite(evaluated_before) else None,
            tokens_required=bool(self._config.tokens),
            counts=counts,
        )

    def rules_answer(self) -> RulesAnswer:
        return rules_answer(self._live.ruleset)

    def fleet_answer(self, service: str | None) -> FleetAnswer:
        """The fleet, or one service of it (none if it has no server)."""
        return fleet_answer(self._live.fleet(), service)

    def open_alerts(self) -> list[OpenAlert]:
        """The alerts firing or pending now, as `GET /alerts` lists them."""
        return self._open_alerts(self._live.alerts())

    def _open_alerts(self, episodes: list[Episode]) -> list[OpenAlert]:
        thresholds = {spec.name: spec.threshold for spec in self._live.ruleset.rules}
        planner, acks = self._notifications.planner, self._notifications.acks
        now = self._live.evaluated_before  # event time, as notices are judged on
        return [
            OpenAlert.of(
                episode,
                thresholds,
                planner.silenced_by(episode),
                acks.get(episode.id),
                planner.maintenance_of(episode, now),
            )
            for episode in episodes
        ]

    def history_records(self, query: HistoryQuery) -> list[EpisodeRecord]:
        """The episodes of the history that `query` selects, the latest to fire first."""
        return self._history_decoder.decode(read_history(self._config.db, query))

    def alert_detail(self, alert_id: str) -> AlertDetail | None:
        """One alert, open or in the history; None if neither has the id (an alert's short
        id: `params.ALERT_ID`, checked by the caller)."""
        db = self._config.db
        episode = next((e for e in self._live.alerts() if e.id == alert_id), None)
        alert: OpenAlert | None = None
        if episode is not None:
            [alert] = self._open_alerts([episode])
            record = EpisodeRecord.of(episode)
        else:
            found = read_episode(db, alert_id)
            if found is None:
                return None
            record = found
        ack = self._notifications.acks.get(alert_id)
        silences = self._notifications.silences.selecting(record_labels(record))
        last = record.ended if record.ended is not None else self._latest_minute()
        return AlertDetail(
            alert=alert,
            episode=record,
            minutes=[
                AlertMinute(m.minute, m.value, m.matched, m.severity, m.state)
                for m in read_alert_minutes(db, alert_id, record.started, last)
            ],
            notifications=_notifications_sent(db, alert_id),
            ack=AckAnswer.of(alert_id, ack) if ack is not None else None,
            silences=[SilenceAnswer.of(silence, state) for silence, state in silences],
        )

    def _latest_minute(self) -> int:
        """The start of the latest minute evaluated (or of none: before the epoch)."""
        evaluated_before = self._live.evaluated_before
        return int(evaluated_before) - WINDOW_SECONDS if math.isfinite(evaluated_before) else 0


def _notifications_sent(db: Path, alert_id: str) -> list[NotificationSent]:
    """The notifications of an alert: each attempt, as the delivery workers logged it."""
    return [
        NotificationSent(sent.receiver, sent.at, sent.outcome, sent.change, sent.detail, sent.title)
        for sent in read_deliveries(db, alert_id)
    ]


def receiver_answers(notifications: Notifications) -> list[ReceiverAnswer]:
    """Each configured receiver, in the config's order, with its counts and queue."""
    delivery = notifications.delivery
    depths = delivery.depths()
    answers = []
    for spec in notifications.config.receivers:
        counts = delivery.counts[spec.name]
        answers.append(
            ReceiverAnswer(
                name=spec.name,
                type=spec.type,
                queued=depths.get(spec.name, 0),
                sent=counts.sent,
                failed=counts.failed,
                retried=counts.retried,
                dropped=counts.dropped,
                last_sent_at=counts.last_sent_at,
                last_error=counts.last_error,
                last_error_at=counts.last_error_at,
            )
        )
    return answers


def rules_answer(ruleset: RuleSet) -> RulesAnswer:
    """The rules file as the page shows it: its severities, coloured, and its rules."""
    severities = [
        SeverityAnswer(severity.name, severity.description, css_color(severity.color))
        for severity in ruleset.severities
    ]
    return RulesAnswer(ruleset.source, severities, [_rule_answer(spec) for spec in ruleset.rules])


def _rule_answer(spec: RuleSpec) -> RuleAnswer:
    components = sorted(spec.components) if spec.components is not None else None
    levels = spec.levels
    if len(levels) == 1:
        condition = levels[0].condition.text
    else:  # each level's, least severe first
        condition = "; ".join(f"{level.severity.name}: {level.condition.text}" for level in levels)
    return RuleAnswer(
        name=spec.name,
        kind=spec.kind,
        severities=[level.severity.name for level in levels],
        components=components,
        condition=condition,
        description=spec.description,
    )


def fleet_answer(fleet: FleetView, service: str | None) -> FleetAnswer:
    """The fleet by service (of `service` only, if given), each by server."""
    servers = fleet.servers
    if service is not None:
        servers = tuple(seen for seen in servers if seen.service == service)
    services: list[ServiceReading] = []
    for seen in servers:  # by service, then server
        if not services or services[-1].service != seen.service:
            services.append(ServiceReading(seen.service, []))
        services[-1].servers.append(_server_reading(seen))
    return FleetAnswer(fleet.evaluated_before, fleet.quiet_after, services)


def _server_reading(seen: ServerSeen) -> ServerReading:
    components = [
        ComponentReading(reading.component, reading.value, reading.at, list(reading.matched_by))
        for reading in seen.readings
    ]
    return ServerReading(seen.server, seen.last_report, seen.active, seen.quiet, components)
