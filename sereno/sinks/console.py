"""Sinks for the console: alert lines as text or JSON, colour, and the run's summary."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import IO, Protocol

import msgspec
from rich.color import ColorSystem
from rich.style import Style

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert
from sereno.engine.lifecycle import Episode, State
from sereno.engine.records import EpisodeRecord, NoticeRecord
from sereno.rules.rulefmt import RuleSet
from sereno.text import counted, format_number


class AlertSink(Protocol):
    def write(self, alerts: Sequence[Alert]) -> None: ...

    def write_episodes(self, episodes: Sequence[Episode]) -> None: ...

    def write_notices(self, changes: Sequence[Episode]) -> None: ...


class LineSink(AlertSink, Protocol):
    """A sink that can also hand each alert's line over, unwritten (to be merged with other
    jobs' lines)."""

    def alert_lines(self, alerts: Sequence[Alert]) -> list[bytes]: ...

    def episode_lines(self, episodes: Sequence[Episode]) -> list[bytes]: ...


def alert_line(alert: Alert) -> str:
    """The seed's alert line (without severity or colour)."""
    if isinstance(alert, AbsentAlert):
        return (
            f"ALERT timestamp: {alert.timestamp}, silent since: {format_number(alert.last_seen)}, "
            f"server: {alert.server}, service: {alert.service}"
        )
    # `format_number` is repr: `!r` spares two calls an alert, and a file may have millions
    return (
        f"ALERT timestamp: {alert.timestamp!r}, component: {alert.component}, "
        f"value: {alert.value!r}, {_identity(alert)}"
    )


def _identity(alert: Alert) -> str:
    """Whom an alert is about: a server of a service, or a service and the rule's threshold."""
    if isinstance(alert, MajorityAlert):
        return f"service: {alert.service}, threshold: {alert.threshold}"
    return f"server: {alert.server}, service: {alert.service}"


def episode_line(episode: Episode) -> str:
    """One alert episode: which alert, when it started, fired and ended, its peak; and the
    marks of its rule's controls when they are set (a level change, no data, flapping...)."""
    fired = f", fired: {episode.fired}" if episode.fired != episode.started else ""
    return (
        f"EPISODE rule: {episode.key.rule}, {_identity(episode.last)}, "
        f"started: {episode.started}{fired}, ended: {_ending(episode)}, "
        f"peak: {format_number(episode.peak)}, windows: {episode.windows}{_marks(episode)}"
    )


def _ending(episode: Episode) -> str:
    if episode.ended is None:
        ongoing = "no data" if episode.state is State.NO_DATA else "still firing"
        if episode.no_data_since is not None:
            return f"{ongoing} (no data since {episode.no_data_since})"
        return ongoing
    if episode.ended_by == "no data":
        return f"{episode.ended} (no data since {episode.no_data_since})"
    return str(episode.ended)


def _marks(episode: Episode) -> str:
    marks = []
    if episode.previous_severity is not None:
        marks.append(f"severity: {episode.severity} (was {episode.previous_severity})")
    marks += [name for name in ("flapping", "inhibited") if getattr(episode, name)]
    return "".join(f", {mark}" for mark in marks)


def notice_line(episode: Episode) -> str:
    """One notice an alert's change calls for: when, which change, and which alert."""
    record = NoticeRecord.of(episode)
    ending = f", ended by: {record.ended_by}" if record.ended_by is not None else ""
    if record.recovered is not None:
        ending += f", recovered: {format_number(record.recovered)}"
    return (
        f"NOTICE at: {record.at}, change: {record.change}, rule: {record.rule}, "
        f"{_identity(episode.last)}, state: {record.state}, "
        f"value: {format_number(record.value)}{ending}"
    )


def wants_color(mode: str, stream: IO[bytes] | IO[str]) -> bool:
    """`--color auto` colours only a terminal, and not when NO_COLOR is set or TERM is dumb."""
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def _color_system() -> ColorSystem:
    if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return ColorSystem.TRUECOLOR
    return ColorSystem.EIGHT_BIT


def severity_palette(ruleset: RuleSet) -> dict[str, tuple[str, str]]:
    """Each coloured severity's ANSI start and end codes."""
    palette = {}
    system = _color_system()
    for severity in ruleset.severities:
        if severity.color is not None:
            start, _, end = (
                Style(color=severity.color).render("\0", color_system=system).partition("\0")
            )
            palette[severity.name] = (start, end)
    return palette


class TextSink:
    """One line per alert, never wrapped: `[SEVERITY ]ALERT timestamp: ..., ...`."""

    def __init__(
        self,
        stream: IO[bytes],
        show_severity: bool = False,
        palette: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self._stream = stream
        self._show_severity = show_severity
        self._palette = palette or {}

    def _line(self, severity: str, line: str) -> str:
        if self._show_severity:
            line = f"{severity} {line}"
        start, end = self._palette.get(severity, ("", ""))
        return f"{start}{line}{end}\n"

    def write(self, alerts: Sequence[Alert]) -> None:
        self._stream.write("".join(map(self._alert_text, alerts)).encode())

    def write_episodes(self, episodes: Sequence[Episode]) -> None:
        self._stream.write(b"".join(self.episode_lines(episodes)))

    def write_notices(self, changes: Sequence[Episode]) -> None:
        lines = [self._line(episode.severity, notice_line(episode)) for episode in changes]
        self._stream.write("".join(lines).encode("utf-8"))

    def alert_lines(self, alerts: Sequence[Alert]) -> list[bytes]:
        return [self._alert_text(alert).encode() for alert in alerts]

    def _alert_text(self, alert: Alert) -> str:
        return self._line(alert.severity, alert_line(alert))

    def episode_lines(self, episodes: Sequence[Episode]) -> list[bytes]:
        return [self._line(e.severity, episode_line(e)).encode() for e in episodes]


class JsonSink:
    """One JSON object per alert per line (JSON Lines), for jq and other programs."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._encoder = msgspec.json.Encoder()

    def write(self, alerts: Sequence[Alert | EpisodeRecord | NoticeRecord]) -> None:
        self._stream.write(self._encoder.encode_lines(alerts))

    def write_episodes(self, episodes: Sequence[Episode]) -> None:
        self.write([EpisodeRecord.of(episode) for episode in episodes])

    def write_notices(self, changes: Sequence[Episode]) -> None:
        self.write([NoticeRecord.of(episode) for episode in changes])

    def alert_lines(self, alerts: Sequence[Alert | EpisodeRecord]) -> list[bytes]:
        # JSON escapes every line break within a value: the lines are those of the whole
        return self._encoder.encode_lines(alerts).splitlines(keepends=True)

    def episode_lines(self, episodes: Sequence[Episode]) -> list[bytes]:
        return self.alert_lines([EpisodeRecord.of(episode) for episode in episodes])


_rule = attrgetter("rule")


@dataclass
class CountingSink:
    """Passes alerts on and counts them per rule, for the summary."""

    inner: AlertSink
    per_rule: Counter[str] = field(default_factory=Counter)

    def write(self, alerts: Sequence[Alert]) -> None:
        self.per_rule.update(map(_rule, alerts))
        self.inner.write(alerts)

    def write_episodes(self, episodes: Sequence[Episode]) -> None:
        self.per_rule.update(episode.key.rule for episode in episodes)
        self.inner.write_episodes(episodes)

    def write_notices(self, changes: Sequence[Episode]) -> None:
        self.per_rule.update(episode.key.rule for episode in changes)
        self.inner.write_notices(changes)


@dataclass
class RunSummary:
    records: int
    rejected: int
    late: int
    alerts_per_rule: Counter[str]
    rule_order: Sequence[str]
    noun: str = "alert"

    def line(self) -> str:
        total = sum(self.alerts_per_rule.values())
        parts = [f"{self.alerts_per_rule[name]} {name!r}" for name in self.rule_order]
        alerts = counted(total, self.noun)
        if parts:
            alerts += f" ({', '.join(parts)})"
        late = f", {self.late} late" if self.late else ""
        return f"sereno: {alerts}; {self.records} records read, {self.rejected} rejected{late}"
