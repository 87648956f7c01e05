"""`sereno test`: unit tests for rules, written in YAML, run through the real engine.

A test file names a rules file and holds test cases; each gives input events (inline, or as
compact series of one value a minute) and the alerts or episodes it expects, by minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from sereno.engine.alerts import Alert
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode
from sereno.engine.windows import WINDOW_SECONDS, Windows, window_start
from sereno.errors import SerenoError
from sereno.events.schema import Event, event_type
from sereno.rules.rulefmt import RuleSet, load_default_rules, load_rules
from sereno.rules.yamlnodes import load, read_text

NO_SAMPLE = "_"


class RuleTestError(SerenoError):
    """A test file that cannot be read or does not follow the format."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class ServerSpec(_Strict):
    service: str
    active: bool = True


class ExpectedAlert(_Strict):
    minute: int
    rule: str
    server: str | None = None
    service: str | None = None


class ExpectedEpisode(_Strict):
    """An episode; the fields after `service`, when given, must match too."""

    rule: str
    started: int
    ended: int | None = None
    server: str | None = None
    service: str | None = None
    severity: str | None = None
    state: str | None = None
    ended_by: str | None = None
    flapping: bool | None = None
    inhibited: bool | None = None


class ExpectedNotice(_Strict):
    """A notice the alerts' changes call for: fired, escalated, resolved, flapping..."""

    minute: int
    rule: str
    reason: str
    server: str | None = None
    service: str | None = None


class RuleTestCase(_Strict):
    name: str
    start: int = 0
    service: str | None = None
    servers: dict[str, ServerSpec] = {}
    series: dict[str, str] = {}
    events: list[dict[str, Any]] = []
    alerts: list[ExpectedAlert] | None = None
    episodes: list[ExpectedEpisode] | None = None
    notices: list[ExpectedNotice] | None = None


class RuleTestFile(_Strict):
    tests: list[RuleTestCase]
    rules: str | None = None


Found = tuple[Any, ...]


@dataclass(frozen=True)
class Outcome:
    """One test case's result: what differs, one line each, or nothing if it passed."""

    name: str
    differences: list[str]

    @property
    def passed(self) -> bool:
        return not self.differences

    def report(self) -> str:
        """`  ok   NAME`, or `  FAIL NAME` and what differs, indented below it."""
        lines = [f"  {'ok  ' if self.passed else 'FAIL'} {self.name}"]
        lines += [f"       {line}" for line in self.differences]
        return "\n".join(lines)


def load_test_file(path: Path) -> tuple[RuleTestFile, RuleSet]:
    text, unreadable = read_text(path)
    if text is None:
        raise RuleTestError(f"{path}: cannot read the test file: {unreadable}")
    document, not_yaml = load(text, str(path))
    if not_yaml is not None:
        raise RuleTestError(not_yaml)
    try:
        spec = msgspec.convert(document, RuleTestFile)
    except msgspec.ValidationError as error:
        raise RuleTestError(f"{path}: {_explain(error)}") from None
    if not spec.tests:
        raise RuleTestError(f"{path}: no tests")
    for case in spec.tests:
        expected: list[ExpectedAlert | ExpectedEpisode | ExpectedNotice] = [
            *(case.alerts or ()),
            *(case.episodes or ()),
            *(case.notices or ()),
        ]
        if any(item.server is None and item.service is None for item in expected):
            raise RuleTestError(
                f"{path}: test {case.name!r}: each expected alert and episode "
                "and notice needs a 'server' (or, for a majority rule, a 'service')"
            )
        if case.alerts is None and case.episodes is None and case.notices is None:
            raise RuleTestError(
                f"{path}: test {case.name!r}: expects no alerts, episodes or notices"
            )
    if spec.rules is None:
        return spec, load_default_rules()
    return spec, load_rules(path.parent / spec.rules)


def _explain(error: msgspec.ValidationError) -> str:
    message, _, where = str(error).partition(" - at `$")
    return f"{where.rstrip('`') or 'the file'}: {message}" if where else message


def run_test_file(path: Path) -> list[Outcome]:
    spec, ruleset = load_test_file(path)
    return [_run_case(case, ruleset, path) for case in spec.tests]


def _run_case(case: RuleTestCase, ruleset: RuleSet, path: Path) -> Outcome:
    events = sorted(_events(case, ruleset, path), key=lambda event: event.timestamp)
    problems: list[str] = []
    told: list[Episode] = []
    engine = Engine(
        ruleset,
        lambda spec, event, error: problems.append(f"rule {spec.name!r}: {error}"),
        keep_episodes=True,
        on_change=lambda episode: told.append(episode) if episode.tell else None,
    )
    late: list[Event] = []
    alerts = [alert for batch in engine.run(events, Windows(), late.append) for alert in batch]
    problems += [f"late event: {event}" for event in late]
    if case.alerts is not None:
        got = sorted(_alert_found(alert, case.start) for alert in alerts)
        problems += _compare("alerts", sorted(map(_alert_wanted, case.alerts)), got)
    if case.episodes is not None:
        episodes = [_episode_found(episode, case.start) for episode in engine.episodes()]
        problems += _compare_episodes(case.episodes, episodes)
    if case.notices is not None:
        got = sorted(_notice_found(episode, case.start) for episode in told)
        problems += _compare("notices", sorted(map(_notice_wanted, case.notices)), got)
    return Outcome(case.name, problems)


def _events(case: RuleTestCase, ruleset: RuleSet, path: Path) -> Iterator[Event]:
    where = f"{path}: test {case.name!r}"
    decode_as = event_type(ruleset.fields)
    for index, record in enumerate(case.events):
        try:
            yield msgspec.convert(record, decode_as)
        except msgspec.ValidationError as error:
            raise RuleTestError(f"{where}: events[{index}]: {_explain(error)}") from None
    for name, values in case.series.items():
        server, _, component = name.partition(" ")
        spec = case.servers.get(server)
        service = spec.service if spec is not None else case.service
        if not component.strip() or service is None:
            raise RuleTestError(
                f"{where}: series {name!r}: write 'SERVER COMPONENT' and give the server's "
                "service in 'servers' (or a 'service' for the whole test)"
            )
        active = spec.active if spec is not None else True
        for minute, text in enumerate(values.split()):
            if text == NO_SAMPLE:
                continue
            try:
                value = float(text) if "." in text or "e" in text.lower() else int(text)
            except ValueError:
                raise RuleTestError(
                    f"{where}: series {name!r}: {text!r} is not a number (nor {NO_SAMPLE})"
                ) from None
            timestamp = case.start + minute * WINDOW_SECONDS
            yield decode_as(server, service, component.strip(), value, timestamp, active)


def _minute(timestamp: float, start: int) -> int:
    return (window_start(timestamp) - window_start(start)) // WINDOW_SECONDS


def _alert_found(alert: Alert, start: int) -> Found:
    return (_minute(alert.timestamp, start), alert.rule, getattr(alert, "server", alert.service))


def _alert_wanted(alert: ExpectedAlert) -> Found:
    return (alert.minute, alert.rule, alert.server or alert.service)


_EPISODE_MARKS = ("severity", "state", "ended_by", "flapping", "inhibited")


def _episode_found(episode: Episode, start: int) -> dict[str, Any]:
    ended = None if episode.ended is None else _minute(episode.ended, start)
    key = episode.key
    found = {
        "rule": key.rule,
        "who": key.server or key.service,
        "started": _minute(episode.started, start),
        "ended": ended,
    }
    return (
        found
        | {mark: getattr(episode, mark) for mark in _EPISODE_MARKS}
        | {"state": episode.state.value}
    )


def _episode_wanted(episode: ExpectedEpisode) -> dict[str, Any]:
    wanted = {
        "rule": episode.rule,
        "who": episode.server or episode.service,
        "started": episode.started,
        "ended": episode.ended,
    }
    marks = {mark: getattr(episode, mark) for mark in _EPISODE_MARKS}
    return wanted | {mark: value for mark, value in marks.items() if value is not None}


def _compare_episodes(expected: list[ExpectedEpisode], found: list[dict[str, Any]]) -> list[str]:
    """Each expected episode must be found, with the marks it gives, and nothing else."""
    left = list(found)
    missing = []
    for wanted in map(_episode_wanted, expected):
        match = next((got for got in left if got.items() >= wanted.items()), None)
        if match is None:
            missing.append(wanted)
        else:
            left.remove(match)
    if not missing and not left:
        return []
    lines = ["episodes differ:"]
    lines += [f"  expected, not raised: {_episode_text(item)}" for item in missing]
    lines += [f"  raised, not expected: {_episode_text(item)}" for item in left]
    return lines


def _episode_text(item: dict[str, Any]) -> str:
    ended = item["ended"]
    until = "still open" if ended is None else f"ended minute {ended}"
    marks = "".join(f", {mark}: {item[mark]}" for mark in _EPISODE_MARKS if mark in item)
    return f"{item['rule']!r} for {item['who']}: started minute {item['started']}, {until}{marks}"


def _notice_found(episode: Episode, start: int) -> Found:
    key = episode.key
    return (
        _minute(episode.changed_at or 0, start),
        key.rule,
        key.server or key.service,
        episode.tell,
    )


def _notice_wanted(notice: ExpectedNotice) -> Found:
    return (notice.minute, notice.rule, notice.server or notice.service, notice.reason)


def _compare(what: str, wanted: list[Found], got: list[Found]) -> list[str]:
    if wanted == got:
        return []
    missing = [item for item in wanted if item not in got]
    unexpected = [item for item in got if item not in wanted]
    lines = [f"{what} differ:"]
    lines += [f"  expected, not raised: {_describe(what, item)}" for item in missing]
    lines += [f"  raised, not expected: {_describe(what, item)}" for item in unexpected]
    return lines


def _describe(what: str, item: Found) -> str:
    if what == "alerts":
        minute, rule, who = item
        return f"minute {minute}: {rule!r} for {who}"
    minute, rule, who, reason = item
    return f"minute {minute}: {reason} {rule!r} for {who}"
