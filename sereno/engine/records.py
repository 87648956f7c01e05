"""Alert episodes as records: what `--episodes --format json`, the history and the alerts
log hold."""

from __future__ import annotations

import msgspec

from sereno.engine.alerts import Alert
from sereno.engine.lifecycle import Episode
from sereno.events.schema import Number


class EpisodeRecord(msgspec.Struct, frozen=True, tag="episode", tag_field="kind"):
    """An episode as `--format json` writes it."""

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

    @classmethod
    def of(cls, episode: Episode) -> EpisodeRecord:
        key = episode.key
        return cls(
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server or None,
            state=episode.state.value,
            started=episode.started,
            fired=episode.fired,
            ended=episode.ended,
            peak=episode.peak,
            windows=episode.windows,
            last=episode.last,
        )
