"""Delivery: a worker thread per receiver sends what the outbox holds for it, oldest first.

A notice leaves the outbox only once its receiver has acknowledged it, so a receiver that is
down gets everything, in order, when it is back, and a crash between sending and the
acknowledgement repeats a notice (with the same idempotency key) rather than losing it. A
failed attempt is retried after an exponential backoff with jitter, until the notice is older
than the receiver's `give_up_after`: then it is dropped, logged and counted.

Failures are typed. One the receiver cannot help (unreachable, login refused) keeps the
oldest notice at the head of the queue. One about the notices sent (a 5xx answer, none in
time) holds back their alert for its own backoff, and the oldest notices of other alerts go
on meanwhile; an alert's own notices always keep their order. A receiver that refuses
notices for good (a 4xx answer) has them dropped at once, logged and counted.

Alertmanager is refreshed with what fires, as the snapshot of the state file has it; or, where
the state file has none (`sereno worker`), as a `FiringSource` given to the `Delivery` says.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.transport import DeliveryError, Sender
from sereno.state.outbox import Outbox, Queued
from sereno.state.store import Delivered
from sereno.stderr import to_stderr
from sereno.text import counted

SENT, FAILED, DROPPED = "sent", "failed", "dropped"  # what became of an attempt
IDLE_POLL_SECONDS = 1.0  # how often an idle worker looks at the outbox without being woken
NoticeOutbox = Outbox[Notice]


def notice_outbox(path: str | Path) -> NoticeOutbox:
    """The outbox of the state file at `path`, holding notices."""
    return Outbox(path, Notice, _alert_of)


def _alert_of(notice: Notice) -> str:
    return notice.alert


def _attempts(
    receiver: str, queued: list[Queued[Notice]], outcome: str, detail: str
) -> list[Delivered]:
    """What became of an attempt to send `queued`, one line per alert told of: a group's
    message tells of each of its alerts."""
    now = time.time()
    return [
        Delivered(told.alert_id, receiver, now, outcome, told.reason, detail, item.message.title)
        for item in queued
        for told in _told_of(item.message)
    ]


def _told_of(notice: Notice) -> list[Notice]:
    """The notices of alerts that `notice` tells of: a group's, or itself."""
    return [told for told in notice.alerts or (notice,) if told.alert_id]


class FiringSource(Protocol):
    """What fires now, for Alertmanager's refresh, where the outbox's state file has no
    snapshot to read it from."""

    def firing_if_drained(self, spec: ReceiverSpec, held: Collection[str]) -> list[Notice] | None:
        """The notices of the alerts firing now that `spec` is to be refreshed with, if
        everything queued for it has been delivered but the notices of the alerts `held`
        back (None if not)."""
        ...


@dataclass
class ReceiverCounts:
    """What a receiver's worker did, for the metrics: written by that worker only."""

    sent: int = 0  # notices acknowledged
    failed: int = 0  # attempts that failed
    retried: int = 0  # attempts made again after a failure
    expired: int = 0  # notices given up on, older than give_up_after
    rejected: int = 0  # notices the receiver refused for good
    last_sent_at: float | None = None  # time.time() of the latest notice acknowledged
    last_error: str | None = None  # why the latest failed attempt failed
    last_error_at: float | None = None

    @property
    def dropped(self) -> int:
        """Notices dropped undelivered, whatever the reason."""
        return self.expired + self.rejected


@dataclass
class _Hold:
    """An alert whose notice failed: its notices wait until `due` (time.monotonic())."""

    failures: int = 0  # attempts failed in a row for this alert
    due: float = 0.0


class Delivery:
    """Runs the receivers' workers over one outbox."""

    def __init__(
        self,
        outbox: NoticeOutbox,
        receivers: Sequence[ReceiverSpec],
        senders: Mapping[str, Sender],
        planner: Planner,
        log: Callable[[str], None] = to_stderr,
        jitter: Callable[[], float] = random.random,
        pause: Callable[[threading.Event, float], object] = threading.Event.wait,
        firing: FiringSource | None = None,
    ) -> None:
        self.outbox = outbox
        self.firing = firing  # None: what fires is the outbox's snapshot
        self.log = log
        self.pause = pause  # (stopping, seconds): a worker's wait after a failure
        self._jitter = jitter
        self.counts: dict[str, ReceiverCounts] = {}  # kept across reloads, as counters are
        self._workers: list[_Worker] = []
        self._prepare(receivers, senders, planner)

    def _prepare(
        self, receivers: Sequence[ReceiverSpec], senders: Mapping[str, Sender], planner: Planner
    ) -> None:
        for spec in receivers:
            self.counts.setdefault(spec.name, ReceiverCounts())
        self._workers = [
            _Worker(spec, senders[spec.name], self, planner, self._jitter) for spec in receivers
        ]

    def start(self) -> None:
        """Start the workers; notices queued for receivers no longer configured are dropped,
        and said so."""
        configured = {worker.spec.name for worker in self._workers}
        for receiver, waiting in self.outbox.depths().items():
            if receiver not in configured:
                self.outbox.discard(receiver)
                self.log(
                    f"sereno: dropped {counted(waiting, 'queued notification')} for receiver "
                    f"{receiver!r}, which the config no longer has"
                )
        for worker in self._workers:
            worker.start()

    def wake(self) -> None:
        """New notices are queued: look now."""
        for worker in self._workers:
            worker.woken.set()

    def stop(self) -> None:
        """Stop the workers (what is not acknowledged stays queued for the next start)."""
        for worker in self._workers:
            worker.stopping.set()
            worker.woken.set()
        for worker in self._workers:
            worker.join(worker.spec.timing.timeout + 1)

    def reconfigure(
        self, receivers: Sequence[ReceiverSpec], senders: Mapping[str, Sender], planner: Planner
    ) -> None:
        """Deliver to `receivers` from now on: each worker finishes what it is sending."""
        self.stop()
        self._prepare(receivers, senders, planner)
        self.start()

    def depths(self) -> dict[str, int]:
        """How many notices wait, by receiver configured (and any other still queued)."""
        depths = {worker.spec.name: 0 for worker in self._workers}
        depths.update(self.outbox.depths())
        return depths


class _Worker(threading.Thread):
    def __init__(
        self,
        spec: ReceiverSpec,
        sender: Sender,
        delivery: Delivery,
        planner: Planner,
        jitter: Callable[[], float],
    ) -> None:
        super().__init__(name=f"sereno-notify-{spec.name}", daemon=True)
        self.spec = spec
        self.woken = threading.Event()
        self.stopping = threading.Event()
        self._sender = sender
        self._delivery = delivery
        self._counts = delivery.counts[spec.name]
        self._planner = planner
        self._jitter = jitter
        self._failures = 0  # attempts failed in a row, whatever their alert
        self._failing: set[str] = set()  # the alerts of those attempts
        self._said_failing = False  # whether this streak of failures was logged
        self._holds: dict[str, _Hold] = {}  # by Notice.alert: those whose notices failed
        self._singly: set[int] = set()  # queued ids of a refused batch: sent one at a time
        self._refreshed_at = float("-inf")

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.woken.clear()
                queued = self._delivery.outbox.oldest(
                    self.spec.name, self._sender.batch_size, skip=self._held()
                )
                if queued:
                    self._deliver(queued)
                else:
                    self._idle()
        finally:
            self._sender.close()

    def _held(self) -> set[str]:
        """The alerts waiting out the backoff of a failed notice."""
        now = time.monotonic()
        return {alert for alert, hold in self._holds.items() if hold.due > now}

    def _deliver(self, queued: list[Queued[Notice]]) -> None:
        if self._dropped_stale(queued):
            return
        if queued[0].id in self._singly:
            queued = queued[:1]
        failure = self._attempt([item.message for item in queued])
        if failure is None:
            self._forget(queued, SENT)
            self._counts.sent += len(queued)
            self._counts.last_sent_at = time.time()
        elif failure.retryable:
            self._delivery.outbox.log(_attempts(self.spec.name, queued, FAILED, str(failure)))
            self._hold(queued, failure)
        else:
            self._refused(queued, failure)

    def _dropped_stale(self, queued: list[Queued[Notice]]) -> bool:
        """Drop those older than `give_up_after`, if any: whether there were."""
        too_old = time.time() - self.spec.timing.give_up_after
        stale = [item for item in queued if item.queued_at < too_old]
        if stale:
            self._forget(stale, DROPPED, f"older than {self.spec.timing.give_up_after:g}s")
            self._counts.expired += len(stale)
            self._say(
                f"gave up on {counted(len(stale), 'notification')} older than "
                f"{self.spec.timing.give_up_after:g}s; the last: {stale[-1].message.text}"
            )
        return bool(stale)

    def _refused(self, queued: list[Queued[Notice]], failure: DeliveryError) -> None:
        """The receiver refused the notice for good: dropped, in one line."""
        if len(queued) > 1:
            # Alertmanager refuses a whole batch (400) for one bad alert, keeping the good
            # ones: sent again one by one, the good ones are taken (as repeats, which it
            # merges) and only the bad one is dropped, rather than the whole batch
            self._singly.update(item.id for item in queued)
            return
        self._forget(queued, DROPPED, f"refused: {failure}")
        self._counts.rejected += 1
        self._say(f"dropped a notification, refused: {failure}; it was: {queued[0].message.text}")

    def _forget(self, done: list[Queued[Notice]], outcome: str, detail: str = "") -> None:
        """Delivered or dropped: out of the queue, logged, and their alerts' backoff is over."""
        logged = _attempts(self.spec.name, done, outcome, detail)
        self._delivery.outbox.remove((item.id for item in done), logged)
        for item in done:
            self._singly.discard(item.id)
            self._holds.pop(item.message.alert, None)

    def _hold(self, failed: list[Queued[Notice]], failure: DeliveryError) -> None:
        """Hold back the alerts of notices that failed, each for its own backoff; others go
        on meanwhile. Not for a failure that is the receiver's: then the oldest stay first."""
        if failure.receiver_wide:
            return
        now = time.monotonic()
        for alert in {item.message.alert for item in failed}:
            hold = self._holds.setdefault(alert, _Hold())
            hold.failures += 1
            hold.due = now + self._backoff(hold.failures, failure.retry_after)

    def _idle(self) -> None:
        """Nothing to send now: refresh what fires if it is time, then wait to be woken (or
        for the first held alert to be due)."""
        wait, now = IDLE_POLL_SECONDS, time.monotonic()
        wait = min([wait, *(hold.due - now for hold in self._holds.values() if hold.due > now)])
        if self.spec.type == "alertmanager":
            due = self._refreshed_at + self.spec.resend_interval - time.monotonic()
            if due <= 0 and self._refresh():
                self._refreshed_at = time.monotonic()
                due = self.spec.resend_interval
            wait = min(wait, due)
        self.woken.wait(max(wait, 0.0))

    def _refresh(self) -> bool:
        """Send what fires again, as of the latest checkpoint, if all queued is sent (if
        not, that comes first: whether it was done). An alert held back waiting to retry is
        left out, and does not hold up the others: Alertmanager would let them expire."""
        held = self._held()
        now_firing = self._firing_if_drained(held)
        if now_firing is None:
            return False
        firing = [notice for notice in now_firing if notice.alert not in held]
        size = self._sender.batch_size
        for start in range(0, len(firing), size):
            if self._attempt(firing[start : start + size]) is not None:
                break  # the rest, at the next refresh
        return True

    def _firing_if_drained(self, held: set[str]) -> list[Notice] | None:
        source = self._delivery.firing
        if source is not None:
            return source.firing_if_drained(self.spec, held)
        episodes = self._delivery.outbox.open_alerts_if_drained(self.spec.name, held)
        if episodes is None:
            return None
        return self._planner.firing_for(self.spec, episodes, time.time())

    def _attempt(self, notices: list[Notice]) -> DeliveryError | None:
        """Send; after a failure of the receiver's that may pass, wait its backoff (or until
        stopped; a failure of one alert's is waited out by that alert alone, see `_hold`).
        Why it failed, or None if it was taken."""
        if self._failures:
            self._counts.retried += 1
        try:
            self._sender.send(notices)
        except DeliveryError as error:
            failure = error
        except Exception as error:  # anything else must not stop the worker
            failure = DeliveryError(repr(error), receiver_wide=True)
        else:
            if self._said_failing:
                self._say(f"delivering again, after {counted(self._failures, 'failed attempt')}")
            self._failures, self._said_failing = 0, False
            self._failing.clear()
            return None
        self._counts.failed += 1
        self._counts.last_error, self._counts.last_error_at = str(failure), time.time()
        if failure.retryable:
            self._failures += 1
            # once a streak, and not again for an alert already known to fail
            if self._failures == 1 and not all(n.alert in self._holds for n in notices):
                self._say(f"{failure}; retrying with backoff")
                self._said_failing = True
            self._failing.update(notice.alert for notice in notices)
            # one alert failing is waited out by that alert alone; several in a row, with
            # none taken between, say that the receiver is in trouble
            if failure.receiver_wide or len(self._failing) > 1:
                seconds = self._backoff(self._failures, failure.retry_after)
                self._delivery.pause(self.stopping, seconds)
        return failure

    def _backoff(self, failures: int, asked: float | None) -> float:
        """After `failures` in a row: doubling from `retry_backoff` up to
        `retry_backoff_max`, each wait between half and the whole of it, so that receivers
        coming back are not hit all at once; at least what the receiver `asked` for
        (Retry-After), up to `give_up_after`."""
        timing = self.spec.timing
        ceiling = min(timing.retry_backoff_max, timing.retry_backoff * 2.0 ** (failures - 1))
        jittered = ceiling * (0.5 + self._jitter() / 2)
        return max(jittered, min(asked or 0.0, timing.give_up_after))

    def _say(self, message: str) -> None:
        self._delivery.log(f"sereno: notify {self.spec.name}: {message}")
