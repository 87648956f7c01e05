"""What `sereno serve`'s API answers, as typed records, and its OpenAPI description.

The handlers encode these records with msgspec; the same types give the JSON schemas of the
OpenAPI document (`GET /openapi.json`), so the description cannot drift from the answers.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import Response

from sereno.engine.lifecycle import Episode
from sereno.engine.records import AckRecord, EpisodeRecord
from sereno.events.body import Rejected
from sereno.events.schema import Event
from sereno.notify.matchers import describe
from sereno.notify.silences import Silence
from sereno.state.store import DeadLetter

JSON = "application/json"
SCHEMAS = "#/components/schemas/{name}"
HTML = {"text/html": {"schema": {"type": "string"}}}
_ENCODER = msgspec.json.Encoder()


def json_answer(status: int, content: object) -> Response:
    """An answer of `content` (a record of this module, or a list of them) as JSON."""
    return Response(_ENCODER.encode(content), status_code=status, media_type=JSON)


class IngestAnswer(msgspec.Struct):
    """What became of the records of a body: the good ones are kept, the bad ones listed."""

    accepted: int
    rejected: int
    errors: list[Rejected]


class OpenAlert(msgspec.Struct):
    """An alert firing, pending or without data: `since` is when it fired (pending: when it
    started). `notified` says whether people were told it fires; `flapping` and `inhibited`
    why they are not told of its changes now; `no_data_since` when its data stopped (once
    its rule's `missing_after` has passed); `previous_severity` the one before its latest
    level change; for a majority alert, the servers that matched and those that reported and
    did not; `silenced_by` the ids of the active silences that keep it from people. `id` is
    its short id (the same for the whole episode), `ack` who has it, `in_maintenance` the
    maintenance window that keeps it from people now; for a majority alert,
    `active_servers` is how many of the service's servers were active."""

    rule: str
    severity: str
    service: str
    server: str | None  # None for a majority rule
    threshold: str | None
    state: str
    since: int
    value: float | int
    notified: bool = False
    flapping: bool = False
    inhibited: bool = False
    no_data_since: int | None = None
    previous_severity: str | None = None
    matched_servers: list[str] | None = None
    unmatched_servers: list[str] | None = None
    silenced_by: list[str] = msgspec.field(default_factory=list)
    id: str = ""
    ack: AckRecord | None = None
    in_maintenance: str | None = None
    active_servers: int | None = None  # a majority alert's active servers

    @classmethod
    def of(
        cls,
        episode: Episode,
        thresholds: dict[str, str | None],
        silenced_by: list[str] | None = None,
        ack: AckRecord | None = None,
        in_maintenance: str | None = None,
    ) -> OpenAlert:
        key = episode.key
        since = episode.fired if episode.fired is not None else episode.started
        matched = getattr(episode.last, "matched_servers", None)
        return cls(
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server or None,
            threshold=thresholds.get(key.rule),
            state=episode.state.value,
            since=since,
            value=episode.last.value,
            notified=episode.notified_at is not None,
            flapping=episode.flapping,
            inhibited=episode.inhibited,
            no_data_since=episode.no_data_since,
            previous_severity=episode.previous_severity,
            matched_servers=matched,
            unmatched_servers=list(episode.unmatched) if matched is not None else None,
            silenced_by=silenced_by or [],
            id=episode.id,
            ack=ack,
            in_maintenance=in_maintenance,
            active_servers=getattr(episode.last, "active", None),
        )


# what people write in a silence: not blank, and short enough to be shown in a listing
TEXT = msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")
# a time as seconds since the epoch, from 1970 to the end of the year 9999
Seconds = Annotated[float, msgspec.Meta(ge=0, le=253402300799)]


class SilenceRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A silence to make: its matchers as `sereno silence add` takes them
    (`service=InboxService`, `server=~"inbox_0[12]"`, `severity!=LOW`), who makes it and why,
    and until when: `ends_at`, or `duration` (`1h`, `30m`) from its start. It starts at
    `starts_at`, or now."""

    matchers: Annotated[list[Annotated[str, TEXT]], msgspec.Meta(min_length=1, max_length=100)]
    created_by: Annotated[str, TEXT]
    comment: Annotated[str, TEXT]
    starts_at: Seconds | None = None
    ends_at: Seconds | None = None
    duration: Annotated[str, msgspec.Meta(pattern=r"^(\d+h)?(\d+m)?(\d+s)?$")] | None = None


class SilenceAnswer(msgspec.Struct):
    """A silence: `state` is pending, active or expired; times are seconds since the epoch;
    `expired_at` is when it was expired by hand, if it was."""

    id: str
    state: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float
    expired_at: float | None

    @classmethod
    def of(cls, silence: Silence, state: str) -> SilenceAnswer:
        return cls(
            id=silence.id,
            state=state,
            matchers=[describe(matcher) for matcher in silence.matchers],
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            created_by=silence.created_by,
            comment=silence.comment,
            updated_at=silence.updated_at,
            expired_at=silence.expired_at,
        )


class SilenceListAnswer(msgspec.Struct):
    """The silences by state: active ones soonest to end first, pending ones soonest to start
    first, expired ones (kept 5 days) latest to end first."""

    active: list[SilenceAnswer]
    pending: list[SilenceAnswer]
    expired: list[SilenceAnswer]


class AckRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Who has the alert, and optionally why or what they are doing about it."""

    by: Annotated[str, TEXT]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class AckAnswer(msgspec.Struct):
    """An alert's acknowledgement: `at` in seconds since the epoch; `severity` the alert's
    then (it is reminded of again once it rises above it)."""

    alert_id: str
    by: str
    at: float
    comment: str
    severity: str

    @classmethod
    def of(cls, alert_id: str, ack: AckRecord) -> AckAnswer:
        return cls(alert_id, ack.by, ack.at, ack.comment, ack.severity)


class StatusCounts(msgspec.Struct):
    """What the evaluator has done since the service started."""

    events_evaluated: int
    late_events: int
    ahead_events: int
    evaluation_errors: int
    windows_evaluated: int
    condition_errors: int


class ServiceStatus(msgspec.Struct):
    """What the service runs: its version, its rules file and how far it has evaluated
    (`evaluated_before`: every minute before it, in event time)."""

    version: str
    source: str
    rules: int
    evaluated_before: float | None
    tokens_required: bool
    counts: StatusCounts


class SeverityAnswer(msgspec.Struct):
    """A severity of the rules file, its colour as `#rrggbb` (None: not coloured)."""

    name: str
    description: str
    color: str | None


class RuleAnswer(msgspec.Struct):
    """A rule: its kind (`per-server`, `majority`, `absent`), its severities (least severe
    first), the components it reads (None: every one) and its condition as written."""

    name: str
    kind: str
    severities: list[str]
    components: list[str] | None
    condition: str
    description: str


class RulesAnswer(msgspec.Struct):
    source: str
    severities: list[SeverityAnswer]
    rules: list[RuleAnswer]


class ComponentReading(msgspec.Struct):
    """A component's latest value on a server, when it was sent, and the rules whose
    condition it met in the latest minute evaluated."""

    component: str
    value: float | int
    at: float
    matched_by: list[str]


class ServerReading(msgspec.Struct):
    """A server as the latest minutes saw it: `quiet` once it has sent nothing for longer
    than the fleet's `quiet_after`."""

    server: str
    last_report: float
    active: bool
    quiet: bool
    components: list[ComponentReading]


class ServiceReading(msgspec.Struct):
    service: str
    servers: list[ServerReading]


class FleetAnswer(msgspec.Struct):
    """The fleet, service by server, as of `evaluated_before` (event time)."""

    evaluated_before: float | None
    quiet_after: float
    services: list[ServiceReading]


class AlertMinute(msgspec.Struct):
    """One evaluated minute of an alert: the value its rule saw (None: no sample), whether
    the condition held, and the alert's severity and state after it."""

    minute: int
    value: float | int | None
    matched: bool
    severity: str
    state: str


class NotificationSent(msgspec.Struct):
    """One attempt to tell a receiver of an alert: `outcome` is sent, failed or dropped;
    `change` what it told (fired, repeat, resolved, escalated...)."""

    receiver: str
    at: float
    outcome: str
    change: str
    detail: str
    title: str


class AlertDetail(msgspec.Struct):
    """One alert: as it is now (`alert`, None once it has ended), its episode as the history
    keeps it, its minutes, the notifications sent of it, who has it and the silences that
    select it."""

    alert: OpenAlert | None
    episode: EpisodeRecord | None
    minutes: list[AlertMinute]
    notifications: list[NotificationSent]
    ack: AckAnswer | None
    silences: list[SilenceAnswer]


class ReceiverAnswer(msgspec.Struct):
    """A receiver and what its delivery has done since the service started (`queued` is what
    waits now); the last error with secrets left out."""

    name: str
    type: str
    queued: int
    sent: int
    failed: int
    retried: int
    dropped: int
    last_sent_at: float | None
    last_error: str | None
    last_error_at: float | None


class DrillAnswer(msgspec.Struct):
    """A test notification sent to a receiver now: whether it took it, and if not, why."""

    receiver: str
    ok: bool
    error: str | None


class Problem(msgspec.Struct):
    """Why a request was refused."""

    error: str


class RulesRefused(msgspec.Struct):
    """A rules file (or notification config) refused on reload: every problem found, one a
    line."""

    error: str
    problems: list[str]


class RulesReloaded(msgspec.Struct):
    status: str
    source: str
    rules: int
    receivers: int


class Status(msgspec.Struct):
    status: str


def _ref(schema: type) -> dict[str, str]:
    return {"$ref": SCHEMAS.format(name=schema.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return _json(_ref(Problem), description)


def _list_of(schema: type) -> dict[str, Any]:
    return {"type": "array", "items": _ref(schema)}


# Records are checked one by one, and one that is not an event is listed in the 202 answer
# while the others are kept: so a body may hold any object, or an array of anything.
RECORD = {"anyOf": [_ref(Event), {"type": "object"}]}
EVENTS_BODY = {
    "required": True,
    "description": "One event, a JSON array of events, or JSON Lines (one event a line); "
    "`Content-Encoding: gzip` is taken. Fields the rules do not read are ignored. A record "
    "that is not an event is rejected on its own, and listed in the answer.",
    "content": {
        JSON: {"schema": {"anyOf": [RECORD, {"type": "array", "items": {}}]}},
        "application/x-ndjson": {"schema": RECORD},
    },
}
UNAUTHORIZED = {401: _problem("No valid bearer token (with --token-file)")}
ROUTES: dict[str, dict[str, Any]] = {
    "/events": {
        "summary": "Take events",
        "openapi_extra": {"requestBody": EVENTS_BODY},
        "responses": {
            202: _json(_ref(IngestAnswer), "Taken: the good records are kept"),
            400: _problem("Not JSON, a broken array, nested too deeply, or bad gzip"),
            413: _problem("Over the size limit (--max-body), as sent or decompressed"),
            415: _problem("Another content type or encoding"),
            503: _problem("The evaluator is behind, or the events cannot be stored: send again"),
            **UNAUTHORIZED,
        },
    },
    "/alerts": {
        "summary": "The alerts firing or pending now",
        "responses": {
            200: _json(_list_of(OpenAlert), "By start, rule order, service, server"),
            **UNAUTHORIZED,
        },
    },
    "/alerts/history": {
        "summary": "Every alert that fired, the latest first",
        "responses": {
            200: _json(_list_of(EpisodeRecord), "Episodes, as --episodes --format json"),
            400: _problem(
                "A parameter that is not one: `since` or `until` not a time, `limit` out of "
                "range, a name too long"
            ),
            **UNAUTHORIZED,
        },
    },
    "/dead-letters": {
        "summary": "The journal entries set aside at start, as they could not be replayed",
        "responses": {
            200: _json(_list_of(DeadLetter), "In journal order"),
            **UNAUTHORIZED,
        },
    },
    "/-/reload": {
        "summary": "Read the rules file again",
        "responses": {
            200: _json(_ref(RulesReloaded), "The new rules are at work"),
            400: _json(_ref(RulesRefused), "Refused: the old rules keep running"),
            503: _problem("The evaluator did not take the rules in time"),
            **UNAUTHORIZED,
        },
    },
    "/api/silences": {
        "summary": "The silences, by state",
        "responses": {
            200: _json(_ref(SilenceListAnswer), "Active, pending and expired silences"),
            **UNAUTHORIZED,
        },
    },
    "POST /api/silences": {
        "summary": "Make a silence: the alerts its matchers select are told to nobody",
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref(SilenceRequest)}},
            }
        },
        "responses": {
            201: _json(_ref(SilenceAnswer), "Made; its id is not guessable"),
            400: _problem("Not a silence: a bad matcher, no end, an end before the start..."),
            413: _problem("Over 64 KiB"),
            **UNAUTHORIZED,
        },
    },
    "/api/silences/{silence_id}": {
        "summary": "One silence",
        "responses": {
            200: _json(_ref(SilenceAnswer), "The silence"),
            404: _problem("No silence has this id (or it was pruned)"),
            **UNAUTHORIZED,
        },
    },
    "DELETE /api/silences/{silence_id}": {
        "summary": "Expire a silence now",
        "responses": {
            200: _json(_ref(SilenceAnswer), "Expired; it is kept 5 days"),
            404: _problem("No silence has this id (or it was pruned)"),
            409: _problem("It has expired already"),
            **UNAUTHORIZED,
        },
    },
    "POST /api/alerts/{alert_id}/ack": {
        "summary": "Acknowledge an open alert: no reminders until it resolves or rises",
        "openapi_extra": {
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(AckRequest)}}}
        },
        "responses": {
            200: _json(_ref(AckAnswer), "Acknowledged"),
            400: _problem("Not an acknowledgement: no `by`, another key, too long"),
            404: _problem("No open alert has this id"),
            413: _problem("Over 16 KiB"),
            **UNAUTHORIZED,
        },
    },
    "DELETE /api/alerts/{alert_id}/ack": {
        "summary": "Take an acknowledgement back: reminders go on",
        "responses": {
            200: _json(_ref(AckAnswer), "The acknowledgement taken back"),
            404: _problem("The alert is not acknowledged"),
            **UNAUTHORIZED,
        },
    },
    "/api/receivers": {
        "summary": "The receivers and what their delivery has done since the service started",
        "responses": {
            200: _json(_list_of(ReceiverAnswer), "In the config's order"),
            **UNAUTHORIZED,
        },
    },
    "POST /api/receivers/{name}/test": {
        "summary": "Send a receiver a test notification now, clearly marked as one",
        "responses": {
            200: _json(_ref(DrillAnswer), "Sent: whether the receiver took it, and if not why"),
            404: _problem("No receiver has this name"),
            **UNAUTHORIZED,
        },
    },
    "/api/status": {
        "summary": "What the service runs, how far it has evaluated and what it has counted",
        "responses": {200: _json(_ref(ServiceStatus), "The service's status"), **UNAUTHORIZED},
    },
    "/api/rules": {
        "summary": "The rules at work and their severities, with their colours",
        "responses": {
            200: _json(_ref(RulesAnswer), "In the rules file's order"),
            **UNAUTHORIZED,
        },
    },
    "/api/fleet": {
        "summary": "Each server's last report and latest values of the components the rules read",
        "responses": {
            200: _json(_ref(FleetAnswer), "By service, server and component"),
            400: _problem("A `service` too long"),
            **UNAUTHORIZED,
        },
    },
    "/api/alerts/{alert_id}": {
        "summary": "One alert, open or ended: its episode, minutes, notifications, "
        "acknowledgement and silences",
        "responses": {
            200: _json(_ref(AlertDetail), "The alert"),
            400: _problem("Not an alert id (10 hex digits)"),
            404: _problem("No open alert nor episode of the history has this id"),
            **UNAUTHORIZED,
        },
    },
    "/healthz": {
        "summary": "Liveness",
        "responses": {200: _json(_ref(Status), "The process runs")},
    },
    "/readyz": {
        "summary": "Readiness",
        "responses": {
            200: _json(_ref(Status), "The evaluator runs"),
            503: _problem("The evaluator is not running"),
        },
    },
    "/": {
        "summary": "The web page for people (HTML): one of its views, read-only without scripts",
        "description": "`view` is alerts (the default), fleet, history, alert, silences or "
        "receivers; each view's filters are query parameters (see the README).",
        "responses": {
            200: {
                "description": "The view; without a valid bearer token (with --token-file), "
                "only a note that one is needed",
                "content": HTML,
            },
            400: {"description": "A view or filter that is not one, and why", "content": HTML},
            404: {"description": "`view=alert`: no alert has this id", "content": HTML},
        },
    },
    "/metrics": {
        "summary": "Prometheus metrics",
        "responses": {
            200: {
                "description": "The Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **UNAUTHORIZED,
        },
    },
}
"""Per path, what FastAPI's route decorator is given to describe it."""

NOT_ON_INGEST_NODE = (
    "this ingest node keeps no alerts: they are on the alerts topic (it serves POST /events, "
    "/healthz, /readyz, /metrics and /openapi.json)"
)
INGEST_ROUTES: dict[str, dict[str, Any]] = {
    "/events": {
        **ROUTES["/events"],
        "responses": {
            **ROUTES["/events"]["responses"],
            202: _json(_ref(IngestAnswer), "Taken: the good records are on the events topic"),
            503: {
                **_problem("Kafka did not take the events in time: send them again"),
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait before sending again",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
    },
    "/readyz": {
        "summary": "Readiness",
        "responses": {
            200: _json(_ref(Status), "The producer runs"),
            503: _problem("The producer is not running"),
        },
    },
}
"""What differs on an ingest node (`sereno serve --kafka`), which serves only these and
`/healthz`, `/metrics`."""


def schema_components() -> dict[str, Any]:
    """The JSON schemas the routes refer to, for the OpenAPI document's components."""
    types = [Event, IngestAnswer, OpenAlert, EpisodeRecord, DeadLetter, Problem, RulesRefused]
    types += [SilenceRequest, SilenceAnswer, SilenceListAnswer, AckRequest, AckAnswer]
    types += [ServiceStatus, RulesAnswer, FleetAnswer, AlertDetail, ReceiverAnswer, DrillAnswer]
    _, components = msgspec.json.schema_components(
        [*types, RulesReloaded, Status], ref_template=SCHEMAS
    )
    return components
