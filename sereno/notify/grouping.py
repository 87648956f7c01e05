"""Grouping, per receiver, as Alertmanager groups: the alerts whose `group_by` labels are the
same are told together, in one message that lists every alert of the group that fires, and
those resolved since the group's last message.

- A new group waits `group_wait` before its first message, to gather the alerts that come
  with the first (one outage of forty servers: one message).
- After that, a change in the group (an alert fires or resolves) is told at most every
  `group_interval`, with the group as it is then.
- While nothing changes and something fires, the message is sent again every
  `repeat_interval`.

Pure, and on event time: the planner hands in the notices each receiver wants, and, each
minute evaluated, asks which groups are due. The groups are part of the service's saved state,
so a restart neither loses a group nor tells it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import FIRING, RESOLVED, Notice

EVERY_LABEL = "..."  # `group_by: [...]`: every alert is a group of its own


class Group(msgspec.Struct):
    """One receiver's group: its labels, its alerts (each as its latest notice, by alert),
    when its oldest change not yet told happened (None: none) and when it was last told."""

    receiver: str
    labels: dict[str, str]
    alerts: dict[str, Notice] = msgspec.field(default_factory=dict)
    changed_at: int | None = None
    told_at: int | None = None

    @property
    def key(self) -> str:
        return group_key(self.receiver, self.labels)


def group_key(receiver: str, labels: dict[str, str]) -> str:
    return "\0".join([receiver, *(f"{name}={value}" for name, value in sorted(labels.items()))])


def group_labels(by: tuple[str, ...], notice: Notice) -> dict[str, str]:
    """The labels an alert is grouped by (the empty string for a label it has not)."""
    labels = notice.labels
    if by == (EVERY_LABEL,):
        return labels
    names = ("alertname" if name == "rule" else name for name in by)
    return {name: labels.get(name, "") for name in names}


class Groups:
    """Every grouping receiver's groups."""

    def __init__(self, groups: Iterable[Group] = ()) -> None:
        self._groups = {group.key: group for group in groups}

    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def saved(self) -> bytes:
        """The groups as the service's state saves them."""
        return msgspec.msgpack.encode(self.groups)

    def restore(self, saved: bytes) -> None:
        """Take up the groups of an earlier run (nothing, for a state saved without)."""
        groups = msgspec.msgpack.decode(saved, type=list[Group]) if saved else []
        self._groups = {group.key: group for group in groups}

    def add(self, spec: ReceiverSpec, notice: Notice) -> None:
        """A change of an alert that `spec`, a grouping receiver, wants told."""
        assert spec.grouping is not None
        labels = group_labels(spec.grouping.by, notice)
        key = group_key(spec.name, labels)
        group = self._groups.get(key) or self._groups.setdefault(key, Group(spec.name, labels))
        group.alerts[notice.alert] = notice
        if group.changed_at is None:
            group.changed_at = notice.at

    def due(self, specs: Iterable[ReceiverSpec], start: int) -> list[tuple[str, Notice]]:
        """The groups' messages due in the minute at `start`, for the receivers `specs`; a
        group of a receiver no longer there, or no longer grouping, is dropped."""
        by_name = {spec.name: spec for spec in specs if spec.grouping is not None}
        due: list[tuple[str, Notice]] = []
        for key, group in list(self._groups.items()):
            spec = by_name.get(group.receiver)
            if spec is None:
                del self._groups[key]
            elif _is_due(spec, group, start):
                due.append((spec.name, _message(group, start)))
                _told(group, start)
                if not group.alerts:
                    del self._groups[key]
        return due


def _is_due(spec: ReceiverSpec, group: Group, start: int) -> bool:
    assert spec.grouping is not None
    if group.changed_at is not None:
        if group.told_at is None:
            return start >= group.changed_at + spec.grouping.wait
        return start >= group.told_at + spec.grouping.interval
    firing = any(n.status == FIRING for n in group.alerts.values())
    told = group.told_at
    return firing and told is not None and start >= told + spec.timing.repeat_interval


def _told(group: Group, start: int) -> None:
    """The group once told: its resolved alerts are told of, and leave it."""
    group.alerts = {a: n for a, n in group.alerts.items() if n.status == FIRING}
    group.changed_at, group.told_at = None, start


def _message(group: Group, start: int) -> Notice:
    """One notice that stands for the whole group: its alerts in `alerts`, firing first."""
    members = sorted(group.alerts.values(), key=lambda n: (n.status != FIRING, n.started, n.alert))
    firing = sum(n.status == FIRING for n in members)
    resolved = len(members) - firing
    first = members[0]
    about = ", ".join(f"{name}={value}" for name, value in sorted(group.labels.items()) if value)
    counts = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    return msgspec.structs.replace(
        first,
        status=FIRING if firing else RESOLVED,
        reason="group",
        summary=f"{counts}: {about or 'all alerts'}",
        at=start,
        alerts=tuple(members),
        group=hashlib.sha256(group.key.encode()).hexdigest()[:16],
        group_labels=group.labels,
    )
