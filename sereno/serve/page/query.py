"""`GET /`'s query: which view and its filters, read from parameters that are hostile until
checked. A bad one is a `PageQueryError` with a one-line reason (the page answers 400)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timezone

from sereno.serve.params import ALERT_ID, iso_moment

VIEWS = ("alerts", "fleet", "history", "alert", "silences", "receivers")
STATES = ("firing", "no data", "pending")  # in the order the alerts are shown
HISTORY_HOURS = 6  # the history's period unless told
MAX_VALUES = 100  # values of a parameter
MAX_LENGTH = 200  # characters of a value
# the years 1 to 9999, as ISO 8601 can write them
_SECONDS = (-62135596800.0, 253402300799.0)


class PageQueryError(ValueError):
    """A query parameter that is not one."""


@dataclass(frozen=True)
class AlertFilters:
    """Which open alerts to show: each list keeps those with one of its values (empty: all);
    `q` those whose labels contain it."""

    severity: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    rule: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    q: str = ""


@dataclass(frozen=True)
class HistoryFilters:
    """The history's period (None: the last `HISTORY_HOURS` hours) and its filters."""

    since: float | None = None
    until: float | None = None
    rule: str | None = None
    service: str | None = None
    severity: str | None = None


@dataclass(frozen=True)
class PageQuery:
    view: str = "alerts"
    alerts: AlertFilters = field(default_factory=AlertFilters)
    history: HistoryFilters = field(default_factory=HistoryFilters)
    service: str | None = None  # the fleet's
    alert_id: str = ""


def parse_query(pairs: Iterable[tuple[str, str]]) -> PageQuery:
    """The page's query from its parameters, in order; unknown ones are ignored."""
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        kept = values.setdefault(name, [])
        if len(kept) >= MAX_VALUES:
            raise PageQueryError(f"`{name}` is given more than {MAX_VALUES} times")
        if len(value) > MAX_LENGTH:
            raise PageQueryError(f"`{name}` is longer than {MAX_LENGTH} characters")
        kept.append(value)
    view = _one(values, "view") or "alerts"
    if view not in VIEWS:
        raise PageQueryError(f"no view is called {view!r}: try one of {', '.join(VIEWS)}")
    if view == "alert":
        alert_id = _one(values, "id") or ""
        if not re.fullmatch(ALERT_ID, alert_id):
            raise PageQueryError("`id` must be an alert's id: 10 hexadecimal digits")
        return PageQuery(view, alert_id=alert_id)
    if view == "history":
        return PageQuery(view, history=_history(values))
    if view == "fleet":
        return PageQuery(view, service=_one(values, "service"))
    return PageQuery(view, alerts=_alert_filters(values) if view == "alerts" else AlertFilters())


def _alert_filters(values: dict[str, list[str]]) -> AlertFilters:
    states = _many(values, "state")
    for state in states:
        if state not in STATES:
            raise PageQueryError(f"`state` is one of {', '.join(STATES)}, not {state!r}")
    return AlertFilters(
        severity=_many(values, "severity"),
        service=_many(values, "service"),
        rule=_many(values, "rule"),
        state=states,
        q=(_one(values, "q") or "").strip(),
    )


def _history(values: dict[str, list[str]]) -> HistoryFilters:
    since, until = _time(values, "since"), _time(values, "until")
    if since is not None and until is not None and until <= since:
        raise PageQueryError("`until` must be after `since`")
    return HistoryFilters(
        since,
        until,
        _one(values, "rule"),
        _one(values, "service"),
        _one(values, "severity"),
    )


def _one(values: dict[str, list[str]], name: str) -> str | None:
    """A parameter given once at the most; blank is not given (an empty form field)."""
    given = [value for value in values.get(name, ()) if value.strip()]
    if len(given) > 1:
        raise PageQueryError(f"`{name}` is given more than once")
    return given[0].strip() if given else None


def _many(values: dict[str, list[str]], name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value.strip() for value in values.get(name, ()) if value.strip()))


def _time(values: dict[str, list[str]], name: str) -> float | None:
    """Seconds since the epoch, or ISO 8601 (a form's `2026-11-29T09:30`, without a time
    zone, is UTC: the times the page shows)."""
    text = _one(values, name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        moment = iso_moment(text)
        if moment is None:
            raise PageQueryError(
                f"`{name}` must be seconds since the epoch or ISO 8601, not {text!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    if not _SECONDS[0] <= seconds <= _SECONDS[1]:  # also refuses nan and inf
        raise PageQueryError(f"`{name}` is out of range: {text!r}")
    return seconds


def history_period(filters: HistoryFilters, now: float) -> tuple[float, float]:
    """The period the history shows: as asked, or the last hours before `now`."""
    until = filters.until if filters.until is not None else now
    since = filters.since if filters.since is not None else until - HISTORY_HOURS * 3600
    return (since, until) if since < until else (until - HISTORY_HOURS * 3600, until)
