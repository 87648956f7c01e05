"""Alert episodes as records: what `--episodes --format json`, the history and the alerts
log hold."""

from __future__ import annotations

import msgspec

from sereno.engine.alerts import Alert
from sereno.engine.lifecycle import Episode
from sereno.events.schema import Number


class AckRecord(msgspec.Struct, frozen=True):
    """Someone has an alert: who, when (seconds since the epoch), why, and the severity it
    had then (its reminders stop until it resolves or rises above it)."""

    by: str
    at: float
    comment: str
    severity: str


class EpisodeRecord(
    msgspec.Struct, frozen=True, tag="episode", tag_field="kind", omit_defaults=True
):
    """An episode as `--format json` writes it; the controls' marks (no data, flapping,
    inhibited, why it ended...) only when they are set."""

    rule: str
    severity: str
    service: str
    server: str | None
    state: str
    started: int
    fired: int | None
    ended: int | None
    peak: Number
    windows: int
    last: Alert
    ended_by: str | None = None
    no_data_since: int | None = None
    flapping: bool = False
    inhibited: bool = False
    notified: bool = False
    unmatched_servers: tuple[str, ...] = ()
    change: str | None = None  # in the alerts log: what changed, and the notice it called for
    notice: str | None = None
    id: str = ""  # the episode's short id
    ack: AckRecord | None = None  # in the history: who has it

    @classmethod
    def of(cls, episode: Episode, as_change: bool = False) -> EpisodeRecord:
        """The episode's record; `as_change`: with what its latest change was."""
        key = episode.key
        return cls(
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server or None,
            state=episode.state._value_,  # not `value`, a slow property: one a record
            started=episode.started,
            fired=episode.fired,
            ended=episode.ended,
            peak=episode.peak,
            windows=episode.windows,
            last=episode.last,
            ended_by=episode.ended_by,
            no_data_since=episode.no_data_since,
            flapping=episode.flapping,
            inhibited=episode.inhibited,
            notified=episode.notified_at is not None,
            unmatched_servers=episode.unmatched,
            change=episode.change._value_ if as_change else None,
            notice=episode.tell if as_change else None,
            id=episode.id,
        )


class NoticeRecord(msgspec.Struct, frozen=True, tag="notice", tag_field="kind", omit_defaults=True):
    """A notice an alert's change calls for, as `--notices --format json` writes it: `at` is
    the minute of the change, `change` which it is (fired, escalated, resolved...), `state`
    the alert's state then, `value` that of its latest match; once it has ended, `ended_by`
    says why and `recovered` is the value it recovered to."""

    at: int
    change: str
    rule: str
    severity: str
    service: str
    server: str | None
    state: str
    value: Number
    started: int
    ended_by: str | None = None
    recovered: Number | None = None

    @classmethod
    def of(cls, episode: Episode) -> NoticeRecord:
        assert episode.tell is not None
        key = episode.key
        return cls(
            at=episode.changed_at if episode.changed_at is not None else episode.started,
            change=episode.tell,
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server or None,
            state=episode.state.value,
            value=episode.last.value,
            started=episode.started,
            ended_by=episode.ended_by,
            recovered=episode.recovered,
        )
