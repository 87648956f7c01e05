"""What the topics hold, as bytes: pure.

- **Events** (`--events-topic`): keyed by the service's name (UTF-8), so that all of a
  service's events land in one partition, where a majority rule sees them together. The value
  is JSON Lines: one event object a line (a single object is a message of one line), all of
  the key's service; ingest nodes put one minute's events in a message, and write a batch's
  messages minute by minute. Agents that write to Kafka themselves send the same.
- **Alerts** (`--alerts-topic`): keyed by the alert's identity (rule, service and server,
  NUL-separated), or by a group's id for a group's message. The value is an `AlertMessage` as
  JSON: a change of an alert as the alerts log writes it, and the notices it calls for, each
  with its receiver and idempotency key; or notices alone (reminders, a group's message); or
  the keys of notices a delivery stage has delivered.
- **State** (`--state-topic`, compacted): keyed by the group, events topic and partition, in the
  partition of the same number; the value is a `PartitionState` as MessagePack.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.engine.records import EpisodeRecord
from sereno.events.schema import Event
from sereno.notify.notice import Notice
from sereno.state.store import Snapshot

_json = msgspec.json.Encoder()


def event_messages(events: Iterable[Event]) -> list[tuple[bytes, bytes]]:
    """The messages of a batch of events: (key, value), one a service and minute, minute by
    minute (in each, the services in the order they first come), each holding its events in
    the order they came. So a partition's messages move through event time as the batch
    does: a message of a later minute of one service never comes before one of an earlier
    minute of another service of its partition, which would make the other's events late."""
    by_minute: dict[tuple[int, str], list[bytes]] = {}
    for event in events:
        by_minute.setdefault((int(event.timestamp // 60), event.service), []).append(
            _json.encode(event)
        )
    return [
        (service.encode(), b"\n".join(by_minute[minute, service]))
        for minute, service in sorted(by_minute, key=lambda at: at[0])
    ]


class Addressed(msgspec.Struct, frozen=True):
    """A notice for one receiver; `key` is the same wherever and however often it is made."""

    receiver: str
    key: str
    notice: Notice


class AlertMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record of the alerts topic: `key` identifies it (a change made twice, as around a
    takeover, has the same key); `change` is the alert's change, if it is one. A record of
    `delivered` keys is a delivery stage's word that it told those notices (written to the
    partition of their record, just after their receiver took them), so that the partition's
    next owner does not tell them again."""

    key: str
    change: EpisodeRecord | None = None
    notices: tuple[Addressed, ...] = ()
    delivered: tuple[str, ...] = ()


def delivered_message(keys: Sequence[str]) -> bytes:
    """The value of the record saying the notices of these keys were delivered."""
    return _json.encode(AlertMessage(f"delivered/{_digest(*keys)}", delivered=tuple(keys)))


def addressed(receiver: str, notice: Notice) -> Addressed:
    return Addressed(receiver, f"{receiver}/{notice.key}", notice)


def change_message(episode: Episode, notices: Sequence[Addressed]) -> tuple[bytes, bytes]:
    """The alerts topic's record of a change of an alert, with the notices it calls for."""
    identity = "\0".join(episode.key)
    change_at = episode.changed_at if episode.changed_at is not None else episode.started
    key = _digest(identity, str(episode.started), episode.change.value, str(change_at))
    record = EpisodeRecord.of(episode, as_change=True)
    message = AlertMessage(key, record, tuple(notices))
    return identity.encode(), _json.encode(message)


def notices_message(notices: Sequence[Addressed]) -> tuple[bytes, bytes]:
    """The alerts topic's record of notices no change called for (reminders, a group's
    message), all about one alert or group."""
    identity = notice_identity(notices[0].notice)
    key = _digest(*(item.key for item in notices))
    return identity.encode(), _json.encode(AlertMessage(key, None, tuple(notices)))


def notice_identity(notice: Notice) -> str:
    """The key of the alert a notice is about, as its changes are keyed (whatever its
    severity), so that all of an alert's records are read in order from one partition; a
    group's message is keyed by its group."""
    if notice.group:
        return f"group\0{notice.group}"
    return "\0".join((notice.rule, notice.service, notice.server))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


ALERT_MESSAGE = msgspec.json.Decoder(AlertMessage)


class PartitionState(msgspec.Struct):
    """What a worker knows of one events partition, as the state topic keeps it: its engine's
    snapshot after the partition's messages up to `snapshot.seq` (an offset) were taken, and
    `replay_from`, the first offset whose events may still be in a minute not yet evaluated:
    a new owner restores the snapshot, then reads the partition again from there."""

    snapshot: Snapshot
    replay_from: int


STATE_ENCODER = msgspec.msgpack.Encoder()
STATE_DECODER = msgspec.msgpack.Decoder(PartitionState)
