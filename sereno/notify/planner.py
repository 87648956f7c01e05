"""Who hears of which alert changes, and what they are told: the `Planner`.

Pure: it is handed the episodes that changed (and, each minute, those firing) and returns, per
receiver that wants it, the notice to queue; or, for a receiver that groups alerts, keeps the
notice in its group until the group is due (`notify.grouping`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec

from sereno.engine.alerts import Alert
from sereno.engine.lifecycle import Episode
from sereno.engine.records import EpisodeRecord
from sereno.notify.acks import Acks
from sereno.notify.config import NotifyConfig, ReceiverSpec
from sereno.notify.grouping import Groups
from sereno.notify.maintenance import in_maintenance
from sereno.notify.matchers import matches
from sereno.notify.notice import FIRING, RESOLVED, Notice, alert_labels
from sereno.notify.silencing import Silences
from sereno.notify.summary import summarize
from sereno.notify.timeintervals import contains
from sereno.rules.rulefmt import RuleSet


class Planner:
    """Which receivers hear of which alert changes, and what they are told. An alert that an
    active silence selects is told to nobody; when a silence ends, the alerts it covered that
    still fire are told then (`unsilenced`). A receiver that groups alerts is told of its
    groups when they are due (`due_groups`), not of each change."""

    def __init__(
        self,
        config: NotifyConfig,
        ruleset: RuleSet,
        silences: Silences | None = None,
        acks: Acks | None = None,
        groups: Groups | None = None,
    ) -> None:
        self.config = config
        self.silences = silences
        self.acks = acks
        self.groups = groups if groups is not None else Groups()
        # Alertmanager repeats for itself: it is refreshed with what fires instead; a grouping
        # receiver is reminded of its groups
        self._reminded = [
            spec
            for spec in config.receivers
            if spec.type != "alertmanager" and spec.grouping is None
        ]
        self.use(ruleset)

    @property
    def reminds(self) -> bool:
        """Whether any receiver is told again of alerts still firing."""
        return bool(self._reminded)

    def use(self, ruleset: RuleSet) -> None:
        """Plan with `ruleset` from now on (after a reload)."""
        self._specs = {spec.name: spec for spec in ruleset.rules}
        self._rank = {severity.name: rank for rank, severity in enumerate(ruleset.severities)}
        self._colors = {severity.name: severity.color for severity in ruleset.severities}

    def for_changes(self, changes: Iterable[Episode]) -> list[tuple[str, Notice]]:
        """The notices the alerts' changes call for (each change says which, if any)."""
        planned = []
        for episode in changes:
            if episode.tell is None:
                continue  # pending, muted, or never told to have fired
            at = episode.changed_at if episode.changed_at is not None else episode.started
            planned += self._to_receivers(self.notice(episode, episode.tell, at))
        return planned

    def unsilenced(
        self, firing: Callable[[], Iterable[Episode]], start: int
    ) -> list[tuple[str, Notice]]:
        """The alerts still firing (and told of) that silences covered until they ended,
        since the last call: told again now, in the minute at `start`, unless another
        silence still covers them. `firing` is asked for only when a silence has ended."""
        ended = self.silences.ended() if self.silences is not None else []
        if not ended:
            return []
        planned = []
        for episode in firing():
            if episode.notified_at is None or episode.muted or not episode.is_open:
                continue
            labels = _labels_of(episode)
            if any(matches(silence.matchers, labels) for silence in ended):
                planned += self._to_receivers(self.notice(episode, "unsilenced", start))
        return planned

    def silenced_by(self, episode: Episode) -> list[str]:
        """The ids of the active silences that select this alert."""
        if self.silences is None or not self.silences.any_active():
            return []
        return self.silences.silencing(_labels_of(episode))

    def maintenance_of(self, episode: Episode, now: float) -> str | None:
        """The maintenance window that keeps this alert from people at `now`, if any."""
        windows = self.config.maintenance_windows
        if not windows:
            return None
        window = in_maintenance(windows, _labels_of(episode), now)
        return window.name if window is not None else None

    def _to_receivers(self, notice: Notice) -> list[tuple[str, Notice]]:
        """The notice for each receiver that wants it (into its group, for a receiver that
        groups alerts); for none while it is silenced."""
        if self._silenced(notice):
            return []
        planned = []
        for spec in self.config.receivers:
            if not self._wants(spec, notice):
                continue
            if spec.grouping is not None:
                self.groups.add(spec, notice)
            else:
                planned.append((spec.name, notice))
        return planned

    def due_groups(self, start: int) -> list[tuple[str, Notice]]:
        """The messages of the groups due in the minute at `start`."""
        return self.groups.due(self.config.receivers, start)

    def repeats(
        self, firing: Iterable[Episode], start: int, previous: int
    ) -> list[tuple[str, Notice]]:
        """The reminders due in the minute at `start` (the one evaluated before it was at
        `previous`): one every `repeat_interval` after people were told an alert fires (or
        fires at a higher level), while it fires, and is not muted."""
        planned = []
        for episode in firing:
            told = episode.notified_at
            if told is None or not episode.is_open or episode.muted or start <= told:
                continue
            if self._acknowledged(episode):
                continue  # someone has it
            before = max(previous, told) - told  # how long it had been told a minute ago
            due = [
                spec
                for spec in self._reminded
                if (start - told) // spec.timing.repeat_interval
                > before // spec.timing.repeat_interval
            ]
            notice = self.notice(episode, "repeat", start) if due else None
            if notice is not None and not self._silenced(notice):
                planned += [(spec.name, notice) for spec in due if self._wants(spec, notice)]
        return planned

    def _acknowledged(self, episode: Episode) -> bool:
        """Whether someone has the alert at its severity (or a higher one than it has now)."""
        ack = self.acks.get(episode.id) if self.acks is not None else None
        if ack is None:
            return False
        rank = self._rank.get(episode.severity, len(self._rank))
        return rank <= self._rank.get(ack.severity, len(self._rank))

    def _silenced(self, notice: Notice) -> bool:
        """Kept from every receiver: by an active silence, or by a maintenance window in force
        at the notice's minute (dropped, as in quiet hours: not told when the window ends)."""
        windows = self.config.maintenance_windows
        if in_maintenance(windows, notice.labels, notice.at) is not None:
            return True
        return self.silences is not None and bool(self.silences.silencing(notice.labels))

    def firing_for(
        self, spec: ReceiverSpec, episodes: Sequence[Episode], now: float
    ) -> list[Notice]:
        """The notices of the alerts firing now that `spec` wants (Alertmanager's refresh),
        but those silenced, or in a maintenance window or the receiver's quiet hours `now`
        (seconds since the epoch)."""
        notices = (
            self.notice(e, "fired", e.fired)
            for e in episodes
            if e.fired is not None and e.notified_at is not None and not e.muted
        )
        return [notice for notice in notices if self._would_tell(spec, notice, now)]

    def _would_tell(self, spec: ReceiverSpec, notice: Notice, now: float) -> bool:
        """Whether `spec` would be told the notice if it were about the minute `now`."""
        as_of_now = msgspec.structs.replace(notice, at=int(now))
        return not self._silenced(as_of_now) and self._wants(spec, as_of_now)

    def notice(self, episode: Episode, reason: str, at: int) -> Notice:
        alert, key = episode.last, episode.key
        spec = self._specs.get(key.rule)
        threshold = spec.threshold if spec is not None else None
        template = spec.summary if spec is not None else None
        matched = getattr(alert, "matched_servers", ())
        ack = self.acks.get(episode.id) if self.acks is not None else None
        return Notice(
            status=RESOLVED if not episode.is_open else FIRING,
            reason=reason,
            rule=key.rule,
            severity=episode.severity,
            service=key.service,
            server=key.server,
            component=getattr(alert, "component", ""),
            value=alert.value,
            summary=summarize(alert, template, threshold),
            description=spec.description if spec is not None else "",
            started=episode.started,
            at=at,
            ended=episode.ended,
            recovered=episode.recovered,
            threshold=threshold,
            color=self._colors.get(episode.severity),
            external_url=self.config.external_url,
            state=episode.state.value,
            previous_severity=episode.previous_severity,
            no_data_since=episode.no_data_since,
            ended_by=episode.ended_by,
            flapping=episode.flapping,
            matched_servers=tuple(matched),
            unmatched_servers=episode.unmatched,
            alert_id=episode.id,
            acked_by=ack.by if ack is not None else None,
            extra_labels=getattr(alert, "labels", None) or {},
        )

    def _wants(self, spec: ReceiverSpec, notice: Notice) -> bool:
        if spec.rules is not None and notice.rule not in spec.rules:
            return False
        if spec.services is not None and notice.service not in spec.services:
            return False
        if not _on_duty(spec, notice.at):
            return False  # dropped, not held back: a muted notice is never queued later
        if spec.min_severity is None:
            return True
        # a severity no longer in the rules is told rather than kept quiet
        rank = self._rank.get(notice.severity, len(self._rank))
        return rank >= self._rank.get(spec.min_severity, 0)


def _labels_of(episode: Episode) -> dict[str, str]:
    """The labels its notices would carry, without rendering a notice."""
    key = episode.key
    return _labels(key.rule, episode.severity, key.service, key.server, episode.last)


def record_labels(record: EpisodeRecord) -> dict[str, str]:
    """The labels of an episode as the history keeps it, as its notices carried them."""
    return _labels(record.rule, record.severity, record.service, record.server, record.last)


def _labels(
    rule: str, severity: str, service: str, server: str | None, alert: Alert
) -> dict[str, str]:
    component = getattr(alert, "component", "")
    extra = getattr(alert, "labels", None) or {}
    return alert_labels(rule, severity, service, server or "", component, extra)


def _on_duty(spec: ReceiverSpec, at: int) -> bool:
    """Whether `spec` is told at `at`: in none of its mute intervals and, if it has active
    intervals, in one of them."""
    if any(contains(interval, at) for interval in spec.mute_time_intervals):
        return False
    active = spec.active_time_intervals
    return not active or any(contains(interval, at) for interval in active)
