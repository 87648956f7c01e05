"""One events partition as a worker evaluates it, and what it writes: pure, given offsets,
events and the time.

Each partition has its own evaluation (`LiveCore`: windows, rules, lifecycle, planner), as a
single `sereno serve` would have for the services the partition holds. Its state is saved
with the offsets it covers, as Kafka Streams keeps a state store with its changelog:
`PartitionState.snapshot.seq` is the offset after the last message taken, and `replay_from`
the first offset whose events may still be in a minute not yet evaluated. A new owner
restores the snapshot, reads the partition again from `replay_from`, and takes the messages
the snapshot covers as replayed (their events refill the open minutes; what they told is not
told again), the rest as new.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

from sereno.events.schema import Event
from sereno.kafka.messages import (
    STATE_ENCODER,
    PartitionState,
    addressed,
    change_message,
    notice_identity,
    notices_message,
)
from sereno.live.core import Checkpoint, LiveCore, Step

Record = tuple[bytes, bytes]  # a Kafka message's key and value


class OffsetTrail:
    """The messages taken, oldest first, with the newest event time of each: which of them
    a new owner must read again."""

    def __init__(self, start: int) -> None:
        self._taken: deque[tuple[int, float]] = deque()
        self._next = start  # the offset after the last message taken

    def add(self, offset: int, newest: float) -> None:
        self._taken.append((offset, newest))
        self._next = offset + 1

    def replay_from(self, closed_before: float) -> int:
        """The first offset whose events may be in a minute at or after `closed_before`
        (not yet evaluated); those before it are forgotten."""
        taken = self._taken
        while taken and taken[0][1] < closed_before:
            taken.popleft()
        return taken[0][0] if taken else self._next


class PartitionWork:
    """The evaluation of one events partition."""

    def __init__(
        self,
        partition: int,
        core: LiveCore,
        state: PartitionState | None,
        log: Callable[[str], None],
    ) -> None:
        self.partition = partition
        self.core = core
        self._log = log
        self.covered = 0  # the messages before this offset were evaluated before the state
        self.resume_at: int | None = None  # where to read from, if the state says
        if state is not None:
            core.restore(state.snapshot)
            self.covered, self.resume_at = state.snapshot.seq, state.replay_from
        self._trail = OffsetTrail(self.resume_at or 0)
        self.next_offset: int | None = None  # the offset after the last message taken

    def take(self, offsets: list[int], events: list[Event], now: float) -> Step:
        """Take the events of the messages at `offsets` (consecutive, in order), as new, or
        as replayed if the restored state covers them."""
        newest = max((event.timestamp for event in events), default=float("-inf"))
        for offset in offsets:
            self._trail.add(offset, newest)
        seq = self.next_offset = offsets[-1] + 1
        if seq > self.covered:
            return self.core.take(seq, events, now)
        try:
            return self.core.replay(seq, events, now)
        except Exception as error:  # as a journal entry at start: set aside, never stop
            where = f"partition {self.partition} at offset {offsets[0]}"
            self._log(f"sereno: the message of {where} could not be evaluated again: {error!r}")
            return Step()

    def state_record(self, checkpoint: Checkpoint, key: bytes) -> Record:
        """The state topic's record of the partition as of `checkpoint`, under `key`."""
        snapshot = checkpoint.snapshot
        state = PartitionState(snapshot, self._trail.replay_from(snapshot.watermark.closed_before))
        return key, STATE_ENCODER.encode(state)


def state_key(group: str, events_topic: str, partition: int) -> bytes:
    """The key of a partition's state: a group's own, so that groups (of other rules, say)
    that share a state topic never take each other's."""
    return f"{group}/{events_topic}/{partition}".encode()


def alert_records(checkpoint: Checkpoint) -> list[Record]:
    """The alerts topic's records of a checkpoint: each change with the notices it called
    for, then the other notices (reminders, groups' messages), one record an alert."""
    records = [
        change_message(episode, [addressed(receiver, notice) for receiver, notice in told])
        for episode, told in zip(checkpoint.changes, checkpoint.told, strict=True)
    ]
    of_changes = sum(len(told) for told in checkpoint.told)
    later = defaultdict(list)
    for receiver, notice in checkpoint.outgoing[of_changes:]:
        later[notice_identity(notice)].append(addressed(receiver, notice))
    records += [notices_message(notices) for notices in later.values()]
    return records
