"""Alert lifecycle: pending, firing, no data, resolved; the same alert from minute to minute.

Pure: it is given each evaluated minute's result, in order, and keeps an `Episode` per alert
(identified by rule, service and server). An alert is *pending* from the first minute its rule
matches; it *fires* once one of its rule's levels has held in every minute for that level's
`for:` (at once, without one), at the most severe level that has; its severity then follows
the levels that hold. It is *resolved* by the first later minute in which its rule looked at
it and it did not match, if its recovery condition holds then (`recover_when`) and its last
match is `keep_firing_for` behind; a minute in which its rule has no data for it changes
nothing, until `missing_after` has passed without data: then its rule's `on_missing` says
what it becomes. A pending alert that misses a minute, or is looked at and does not match, is
forgotten: `for:` starts again.

Each change of an episode says what changed and which notice, if any, it calls for: an alert
flapping (`flapping:`) or inhibited (`inhibited_by:`) is not told of one change at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import msgspec

from sereno.engine.alerts import Alert, AlertKey, alert_key
from sereno.engine.windows import WINDOW_SECONDS
from sereno.events.schema import Number
from sereno.rules.rulefmt import Flapping, OnMissing, RuleSpec


class State(str, Enum):
    PENDING = "pending"
    FIRING = "firing"
    NO_DATA = "no data"  # firing, and then no data for its rule's `missing_after`
    RESOLVED = "resolved"
    DROPPED = "dropped"  # its rule is gone (a reload, a restart with other rules): not watched


OPEN_STATES = (State.PENDING, State.FIRING, State.NO_DATA)


class Change(str, Enum):
    """What happened to an episode."""

    PENDING = "pending"
    FIRED = "fired"
    ESCALATED = "escalated"
    DEESCALATED = "de-escalated"
    NO_DATA = "no data"
    DATA_BACK = "data back"
    RESOLVED = "resolved"
    DROPPED = "dropped"
    FLAPPING = "flapping"
    STABLE = "stopped flapping"
    INHIBITED = "inhibited"
    RELEASED = "no longer inhibited"


class Episode(msgspec.Struct, frozen=True):
    """One alert from the minute its rule first matched to the minute it ended.

    A value: each change of it is a new `Episode`, so that one handed on stays as it was.

    `started` is the start of the first matching minute, `fired` of the minute it fired,
    `ended` of the minute that ended it (None while open); `peak` is the highest value seen
    (for silence, the longest), `windows` the number of matching minutes and `last` the
    alert of the latest of them; `recovered` is the value seen in the minute that resolved it
    (for silence, the seconds since the server's event that ended it).

    `seen` is the latest minute its rule had data for it and it did not match (the latest
    with data is the later of that and `last_window`), `no_data_since` when its data
    stopped (once `missing_after` has passed), `ended_by` why it ended (recovered, no data,
    rule removed). `runs` is, per level of its rule, the start of the unbroken run of matching
    minutes at that level or above (None: not in one). `notified_at` is the minute people were
    last told it fires (None: not told), from which reminders are counted; `change` is what
    this value of it changed, at `changed_at`, and `tell` the notice that calls for, if any.
    `unmatched` lists, for a majority rule, the active servers that reported and did not match.
    """

    key: AlertKey
    severity: str
    state: State
    started: int
    last_window: int
    peak: Number
    windows: int
    last: Alert
    fired: int | None = None
    ended: int | None = None
    recovered: Number | None = None
    seen: int | None = None
    no_data_since: int | None = None
    ended_by: str | None = None
    runs: tuple[int | None, ...] = ()
    flapping: bool = False
    inhibited: bool = False
    notified_at: int | None = None
    change: Change = Change.PENDING
    changed_at: int | None = None
    tell: str | None = None
    unmatched: tuple[str, ...] = ()
    previous_severity: str | None = None  # the severity before its latest level change

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def id(self) -> str:
        """A short id, the same for the whole episode (whatever its level) and everywhere it
        is shown: the API, the status page, notifications, `sereno ack`."""
        return episode_id(self.key, self.started)

    @property
    def muted(self) -> bool:
        """Whether its changes are kept from people for now (flapping or inhibited)."""
        return self.flapping or self.inhibited


class FlapHistory(msgspec.Struct):
    """An alert's last evaluations, for flap detection: bit i of `states` is whether it was
    firing i evaluations ago (of `count`); `last` is its latest episode."""

    key: AlertKey
    states: int
    count: int
    flapping: bool
    last: Episode


@dataclass(frozen=True)
class WindowResult:
    """What the rules found in one minute: its alerts; every alert they looked at, with the
    value they saw; of those, the ones whose rule has a recovery condition that holds; and
    the servers of each majority alert that reported and did not match."""

    start: int
    alerts: list[Alert]
    looked_at: dict[AlertKey, Number]
    recovered: set[AlertKey] = field(default_factory=set)
    unmatched: dict[AlertKey, tuple[str, ...]] = field(default_factory=dict)
    order: list[tuple[Number, int, str, str]] = field(default_factory=list)
    """Where each alert goes among the minute's (time, rule order, service, server)."""


class _Controls:
    """What the lifecycle needs of a rule."""

    def __init__(self, spec: RuleSpec) -> None:
        self.severities = tuple(level.severity.name for level in spec.levels)
        self.holds = tuple(level.hold for level in spec.levels)
        self.rank = {name: index for index, name in enumerate(self.severities)}
        self.recovers = spec.recover_when is not None
        self.keep_firing_for = spec.keep_firing_for
        self.on_missing = spec.on_missing
        self.missing_after = spec.missing_after
        self.flapping: Flapping | None = spec.flapping
        self.inhibited_by = spec.inhibited_by
        self.equal = spec.equal
        self.single = len(self.holds) == 1  # most rules: no level runs to keep

    def level_of(self, severity: str) -> int:
        return self.rank.get(severity, 0)

    def runs(
        self, before: tuple[int | None, ...], level: int, start: int, on: bool
    ) -> tuple[int | None, ...]:
        """Each level's run after a minute matching at `level`; `on`: the runs before go on.
        A rule of one level keeps none: its run is its pending episode's, from its start."""
        if self.single:
            return ()
        before = before if len(before) == len(self.holds) else (None,) * len(self.holds)
        return tuple(
            ((run if on and run is not None else start) if index <= level else None)
            for index, run in enumerate(before)
        )

    def reached(self, runs: tuple[int | None, ...], start: int) -> int:
        """The most severe level whose `for:` has held by the end of the minute; -1 if none."""
        end = start + WINDOW_SECONDS
        for index in range(len(runs) - 1, -1, -1):
            run = runs[index]
            if run is not None and end - run >= self.holds[index]:
                return index
        return -1


class Lifecycle:
    """Tracks every alert across minutes. `update` takes the minutes in order."""

    def __init__(
        self,
        rules: Sequence[RuleSpec],
        keep_resolved: bool = False,
        on_change: Callable[[Episode], None] | None = None,
        alerts_only: bool = False,
    ) -> None:
        """`alerts_only`: only `update`'s firing alerts are asked for, never the episodes
        (`still_open`, the state)."""
        self._rules = {spec.name: _Controls(spec) for spec in rules}
        self._flapping_rules = {name for name, rule in self._rules.items() if rule.flapping}
        self._inhibited_rules = {name for name, rule in self._rules.items() if rule.inhibited_by}
        self._keep_resolved = keep_resolved
        self._on_change = on_change or _ignore  # told of every episode that changes
        self._open: dict[AlertKey, Episode] = {}
        self._flaps: dict[AlertKey, FlapHistory] = {}
        # a batch run that prints alerts only: changes need no notices, no marks, no record
        self._unheard = (
            on_change is None
            and not keep_resolved
            and not self._flapping_rules
            and not self._inhibited_rules
        )
        # kept only if asked to, until taken: each episode by its alert and start
        self._resolved: dict[tuple[AlertKey, int], Episode] = {}
        # ...that asks for alerts only, of rules that all fire at their first match at their
        # only level: every alert of a minute fires in it, whatever came before, and nothing
        # need be tracked
        self.untracked = (
            alerts_only
            and self._unheard
            and all(rule.single and rule.holds[0] <= 0 for rule in self._rules.values())
        )

    def update(self, result: WindowResult) -> list[Alert]:
        """Take one minute's result; return its alerts that are firing."""
        if self.untracked:
            return result.alerts
        start = result.start
        keys = [alert_key(alert) for alert in result.alerts]
        by_key: dict[AlertKey, list[Alert]] = {}
        for key, alert in zip(keys, result.alerts, strict=True):
            by_key.setdefault(key, []).append(alert)
        changed: dict[AlertKey, tuple[Episode, Change]] = {}
        firing: set[AlertKey] = set()
        unmatched, opened = result.unmatched, self._open
        for key, alerts in by_key.items():
            episode, change = self._matched(key, alerts, start, unmatched.get(key, ()))
            opened[key] = episode  # pending or firing: open
            if change is not None:
                changed[key] = (episode, change)
            if episode.state is State.FIRING:
                firing.add(key)
        for key, episode in list(self._open.items()):
            if key not in by_key:
                missed, change = self._missed(episode, start, result)
                if missed is not episode or change is not None:
                    self._keep(key, missed, change, changed)
        flapped = self._detect_flapping(changed, result.looked_at)
        inhibited = self._detect_inhibition()
        self._tell_changes(start, changed, flapped, inhibited)
        return [alert for key, alert in zip(keys, result.alerts, strict=True) if key in firing]

    def _keep(
        self,
        key: AlertKey,
        episode: Episode | None,
        change: Change | None,
        changed: dict[AlertKey, tuple[Episode, Change]],
    ) -> None:
        """Hold the episode as the minute leaves it (None: forgotten), noting its change."""
        if episode is None or not episode.is_open:
            self._open.pop(key, None)
        else:
            self._open[key] = episode
        if episode is not None and change is not None:
            changed[key] = (episode, change)

    def fire_early(self, alert: Alert, start: int) -> None:
        """An alert of the minute at `start`, found before that minute is evaluated: fire it
        now if this match makes it fire. The minute's evaluation, when it closes, has the
        last word: it continues the episode, or resolves it if by then the alert no longer
        matches. Call it only for the oldest minute not yet evaluated."""
        key = alert_key(alert)
        episode = self._open.get(key)
        if episode is not None and episode.state is not State.PENDING:
            return  # open already: the minute's evaluation will carry it on
        matched, change = self._matched(key, [alert], start, ())
        if change is not Change.FIRED:
            return  # pending only: the minute's evaluation will tell
        flaps = self._flaps.get(key)
        flagged = msgspec.structs.replace(
            matched,
            flapping=flaps is not None and flaps.flapping,
            inhibited=key.rule in self._inhibited_rules and self._is_inhibited(key),
        )
        self._emit(self._told(flagged, Change.FIRED, start))

    @staticmethod
    def _starts_anew(episode: Episode | None, start: int) -> bool:
        """Whether a match in the minute at `start` begins a new episode: there is none, or
        only one pending since before a minute without data (`for:` starts again)."""
        return episode is None or (
            episode.state is State.PENDING and episode.last_window < start - WINDOW_SECONDS
        )

    def _matched(
        self, key: AlertKey, alerts: list[Alert], start: int, unmatched: tuple[str, ...]
    ) -> tuple[Episode, Change | None]:
        """The alert's episode after a minute in which its rule matched it."""
        rule = self._rules[key.rule]
        episode = self._open.get(key)
        alert = alerts[-1]
        if len(alerts) == 1:
            peak = alert.value
            level = 0 if rule.single else rule.level_of(alert.severity)
        else:
            level = max(rule.level_of(one.severity) for one in alerts)
            peak = max(one.value for one in alerts)
        if episode is None or self._starts_anew(episode, start):
            matched = Episode(
                key,
                alert.severity,
                State.PENDING,
                start,
                start,
                peak,
                1,
                alert,
                runs=rule.runs((), level, start, on=False),
                unmatched=unmatched,
            )
            change: Change | None = Change.PENDING
        else:
            # a rule may match a server twice in a minute: the minute counts once
            same_minute = episode.last_window == start
            matched = msgspec.structs.replace(
                episode,
                last_window=start,
                windows=episode.windows if same_minute else episode.windows + 1,
                last=alert,
                peak=max(episode.peak, peak),
            )
            if not rule.single or unmatched or episode.unmatched or episode.no_data_since:
                on = episode.last_window >= start - WINDOW_SECONDS
                runs = rule.runs(episode.runs, level, start, on=on)
                matched = msgspec.structs.replace(
                    matched, runs=runs, unmatched=unmatched, no_data_since=None
                )
            change = None
        if rule.single:
            return self._one_level(matched, rule, start, change)
        return self._leveled(matched, rule, start, change)

    @staticmethod
    def _leveled(
        episode: Episode, rule: _Controls, start: int, change: Change | None
    ) -> tuple[Episode, Change | None]:
        """The episode at the level its runs have reached: fired, or moved up or down."""
        reached = rule.reached(episode.runs, start)
        if episode.state is State.PENDING:
            if reached < 0:
                return episode, change
            fired = msgspec.structs.replace(
                episode, state=State.FIRING, fired=start, severity=rule.severities[reached]
            )
            return fired, Change.FIRED
        level, before = max(reached, 0), rule.level_of(episode.severity)
        moved = msgspec.structs.replace(
            episode,
            state=State.FIRING,
            severity=rule.severities[level],
            previous_severity=episode.severity if level != before else episode.previous_severity,
        )
        if level != before:
            return moved, Change.ESCALATED if level > before else Change.DEESCALATED
        return moved, Change.DATA_BACK if episode.state is State.NO_DATA else change

    @staticmethod
    def _one_level(
        episode: Episode, rule: _Controls, start: int, change: Change | None
    ) -> tuple[Episode, Change | None]:
        """`_leveled` for a rule of one level: it fires once its `for:` has held since the
        pending episode started; a firing one stays as it is."""
        if episode.state is State.PENDING:
            if start + WINDOW_SECONDS - episode.started < rule.holds[0]:
                return episode, change
            fired = msgspec.structs.replace(
                episode, state=State.FIRING, fired=start, severity=rule.severities[0]
            )
            return fired, Change.FIRED
        if episode.state is State.NO_DATA:
            return msgspec.structs.replace(episode, state=State.FIRING), Change.DATA_BACK
        return episode, change

    def _missed(
        self, episode: Episode, start: int, result: WindowResult
    ) -> tuple[Episode | None, Change | None]:
        """The alert's episode after a minute in which its rule did not match it: looked at
        (and false), or no data."""
        if episode.state is State.PENDING:
            return None, None  # `for:` must hold in every minute: start again
        rule, key = self._rules[episode.key.rule], episode.key
        value = result.looked_at.get(key)
        if value is None:
            return self._without_data(episode, rule, start)
        recovered = not rule.recovers or key in result.recovered
        behind = start - (episode.last_window + WINDOW_SECONDS)
        undone = episode.last_window == start  # fired early; the minute does not match after all
        if recovered and (undone or behind >= rule.keep_firing_for):
            return _ended(episode, start, "recovered", recovered=value), Change.RESOLVED
        kept = msgspec.structs.replace(episode, state=State.FIRING, seen=start, no_data_since=None)
        return kept, Change.DATA_BACK if episode.state is State.NO_DATA else None

    @staticmethod
    def _without_data(
        episode: Episode, rule: _Controls, start: int
    ) -> tuple[Episode, Change | None]:
        """A minute without data for an open alert: once `missing_after` has passed since
        its last data, its rule's `on_missing` says what it becomes."""
        seen = max(episode.seen or episode.last_window, episode.last_window)
        if start - seen < rule.missing_after or episode.no_data_since is not None:
            return episode, None
        since = seen + WINDOW_SECONDS
        if rule.on_missing is OnMissing.RESOLVE:
            ended = _ended(episode, start, "no data")
            return msgspec.structs.replace(ended, no_data_since=since), Change.RESOLVED
        state = State.NO_DATA if rule.on_missing is OnMissing.ALERT else State.FIRING
        return msgspec.structs.replace(episode, state=state, no_data_since=since), Change.NO_DATA

    # --- flapping and inhibition ---------------------------------------------------------

    def _detect_flapping(
        self,
        changed: dict[AlertKey, tuple[Episode, Change]],
        looked_at: Mapping[AlertKey, Number],
    ) -> dict[AlertKey, bool]:
        """Record this minute's evaluation of each alert of a flapping rule that was looked
        at or open; the alerts that started (True) or stopped (False) flapping."""
        if not self._flapping_rules:
            return {}
        # in a fixed order (not a set's, which changes from run to run): the order told
        evaluated = dict.fromkeys(
            key
            for key in [*self._open, *changed, *self._flaps]
            if key.rule in self._flapping_rules
            and (key in self._open or key in changed or key in looked_at)
        )
        toggled: dict[AlertKey, bool] = {}
        for key in evaluated:
            episode = self._open.get(key)
            if episode is None and key in changed:
                episode = changed[key][0]
            history = self._flaps.get(key)
            firing = episode is not None and episode.state in (State.FIRING, State.NO_DATA)
            if history is None:
                if episode is None or not firing:
                    continue
                history = self._flaps[key] = FlapHistory(key, 0, 0, False, episode)
            if episode is not None:
                history.last = episode
            flapping = self._rules[key.rule].flapping
            assert flapping is not None
            history.states = (history.states << 1 | firing) & ((1 << flapping.window) - 1)
            history.count = min(history.count + 1, flapping.window)
            share = flap_share(history.states, history.count, flapping.window)
            if share >= flapping.high and not history.flapping:
                history.flapping = toggled[key] = True
            elif share < flapping.low and history.flapping:
                history.flapping, toggled[key] = False, False
            if history.states == 0 and not history.flapping and key not in toggled:
                del self._flaps[key]  # no change left in its window
        return toggled

    def _detect_inhibition(self) -> dict[AlertKey, bool]:
        """Whether each open alert of an inhibited rule is inhibited now."""
        if not self._inhibited_rules:
            return {}
        inhibiting = {name: self._inhibiting(name) for name in self._inhibited_rules}
        return {
            key: _labels(key, self._rules[key.rule].equal) in inhibiting[key.rule]
            for key in self._open
            if key.rule in inhibiting
        }

    def _is_inhibited(self, key: AlertKey) -> bool:
        return _labels(key, self._rules[key.rule].equal) in self._inhibiting(key.rule)

    def _inhibiting(self, rule_name: str) -> set[tuple[str, ...]]:
        """The `equal` labels of the firing alerts that inhibit the rule's alerts."""
        rule = self._rules[rule_name]
        return {
            _labels(episode.key, rule.equal)
            for episode in self._open.values()
            if episode.state is State.FIRING and episode.key.rule in rule.inhibited_by
        }

    # --- telling -------------------------------------------------------------------------

    def _tell_changes(
        self,
        start: int,
        changed: dict[AlertKey, tuple[Episode, Change]],
        flapped: dict[AlertKey, bool],
        inhibited: dict[AlertKey, bool],
    ) -> None:
        """Flag the minute's changes as flapping or inhibited, decide their notices and hand
        them on; then the alerts that started or stopped flapping, or being inhibited."""
        if self._unheard:
            return  # nobody is told of changes, and none is kept: what is open is all
        for key, (episode, change) in changed.items():
            self._emit(self._told(self._flagged(key, episode, inhibited), change, start))
        for key, flapping in flapped.items():
            latest = self._open.get(key) or self._flaps[key].last  # kept while it toggles
            flagged = msgspec.structs.replace(latest, flapping=flapping)
            self._emit(self._told(flagged, Change.FLAPPING if flapping else Change.STABLE, start))
        for key, now in inhibited.items():
            current = self._open.get(key)
            if key in changed or current is None or current.inhibited == now:
                continue
            flagged = msgspec.structs.replace(current, inhibited=now)
            self._emit(self._told(flagged, Change.INHIBITED if now else Change.RELEASED, start))

    def _flagged(
        self, key: AlertKey, episode: Episode, inhibited: Mapping[AlertKey, bool]
    ) -> Episode:
        if key.rule not in self._flapping_rules and key.rule not in self._inhibited_rules:
            return episode  # neither can be set
        flaps = self._flaps.get(key)
        return msgspec.structs.replace(
            episode,
            flapping=flaps is not None and flaps.flapping,
            inhibited=inhibited.get(key, episode.inhibited)
            if episode.is_open
            else episode.inhibited,
        )

    @staticmethod
    def _told(episode: Episode, change: Change, start: int) -> Episode:
        """The episode as of `change`, with the notice that calls for (if any); a notice
        that says it fires (or fires at a higher level) starts its reminders again."""
        tell = _notice_for(episode, change)
        restarts = tell in _RESTARTING or (
            tell is not None and episode.state is State.FIRING and change is Change.STABLE
        )
        return msgspec.structs.replace(
            episode,
            change=change,
            changed_at=start,
            tell=tell,
            notified_at=start if restarts else episode.notified_at,
        )

    def _emit(self, episode: Episode) -> None:
        key = episode.key
        if episode.is_open:
            self._open[key] = episode
        flaps = self._flaps.get(key)
        if flaps is not None:
            flaps.last = episode
        self._on_change(episode)
        ends_now = episode.change is Change.RESOLVED or episode.ended == episode.changed_at
        if self._keep_resolved and episode.state is State.RESOLVED and ends_now:
            self._keep_final(episode)

    def _keep_final(self, episode: Episode) -> None:
        """Keep a resolved episode for `take_resolved`: its latest value, once, even when
        other episodes were kept between its changes (a resolve, then its flapping)."""
        self._resolved[(episode.key, episode.started)] = episode

    # --- state ---------------------------------------------------------------------------

    def restore(
        self, episodes: Iterable[Episode], flaps: Iterable[FlapHistory] = ()
    ) -> list[Episode]:
        """Take up the open alerts of an earlier run, or of the rules before a reload: those
        of rules this lifecycle has. The others are returned."""
        left: list[Episode] = []
        for episode in episodes:
            rule = self._rules.get(episode.key.rule)
            if rule is None:
                left.append(episode)
            elif episode.severity in rule.rank:
                self._open[episode.key] = episode
            else:  # its level is gone from the rule: it fires at the least severe one left
                leveled = msgspec.structs.replace(episode, severity=rule.severities[0])
                self._open[episode.key] = leveled
        for history in flaps:
            if history.key.rule in self._flapping_rules:
                self._flaps[history.key] = history
        return left

    def flap_histories(self) -> list[FlapHistory]:
        return list(self._flaps.values())

    def take_resolved(self) -> list[Episode]:
        """The episodes resolved since the last call, in the order they were resolved."""
        resolved, self._resolved = list(self._resolved.values()), {}
        return resolved

    def still_open(self) -> list[Episode]:
        """The alerts open now (pending, firing, no data), in the order they started."""
        return sorted(self._open.values(), key=lambda episode: episode.started)


_RESTARTING = (Change.FIRED.value, Change.ESCALATED.value)
_TOLD_ONCE_FIRING = (Change.ESCALATED, Change.DEESCALATED, Change.DATA_BACK, Change.NO_DATA)
_FIRED = Change.FIRED.value


def _notice_for(episode: Episode, change: Change) -> str | None:
    """Which notice a change calls for. People hear of an alert once it fires, unless it is
    muted (flapping or inhibited); then of its changes; of its end if they heard it fire and
    it is not flapping; of its flapping (unless inhibited) when that starts and stops."""
    told = episode.notified_at is not None
    # `_value_`, not `value`: an enum's `value` is a property, slow for a call an alert
    said: str = change._value_
    if change in (Change.FLAPPING, Change.STABLE):
        return None if episode.inhibited else said
    if change in (Change.RESOLVED, Change.DROPPED):
        return said if told and not episode.flapping else None
    if episode.muted:
        return None
    if episode.state is State.FIRING and not told:
        return _FIRED
    kept_firing = change is Change.NO_DATA and episode.state is State.FIRING  # shown, not told
    return said if told and change in _TOLD_ONCE_FIRING and not kept_firing else None


def episode_id(key: AlertKey, started: int) -> str:
    """10 hex digits of the episode's identity: its alert, and the minute it started."""
    identity = "\0".join((key.rule, key.service, key.server, str(started)))
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def flap_share(states: int, count: int, window: int) -> float:
    """Nagios' weighted share of state changes over the last `window` evaluations (`count`
    of them known, newest in bit 0): a change weighs 1.25 when newest, down to 0.75 oldest."""
    changes = states ^ (states >> 1)
    total = 0.0
    for age in range(max(0, min(count, window) - 1)):
        if changes >> age & 1:
            total += 0.75 + 0.5 * (window - 2 - age) / (window - 2)
    return total / (window - 1)


def _labels(key: AlertKey, names: Iterable[str]) -> tuple[str, ...]:
    return tuple(key.service if name == "service" else key.server for name in names)


def dropped(episode: Episode, ended: int) -> Episode:
    """The episode of a rule no longer there, ended as dropped at `ended`; people are told if
    they were told it fired."""
    gone = msgspec.structs.replace(
        _ended(episode, ended, "rule removed"), state=State.DROPPED, recovered=episode.recovered
    )
    return Lifecycle._told(gone, Change.DROPPED, ended)


def _ended(episode: Episode, start: int, why: str, recovered: Number | None = None) -> Episode:
    return msgspec.structs.replace(
        episode, state=State.RESOLVED, ended=start, recovered=recovered, ended_by=why
    )


def _ignore(episode: Episode) -> None:
    pass


def episodes_in_order(episodes: Iterable[Episode], rule_order: Mapping[str, int]) -> list[Episode]:
    """By start, then rule order, then service and server: the order alerts are listed in."""
    return sorted(episodes, key=lambda episode: episode_order(episode, rule_order))


def episode_order(episode: Episode, rule_order: Mapping[str, int]) -> tuple[int, int, str, str]:
    key = episode.key
    return (episode.started, rule_order[key.rule], key.service, key.server)
