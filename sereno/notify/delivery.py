"""Delivery: a worker thread per receiver sends what the outbox holds for it, oldest first.

A notice leaves the outbox only once its receiver has acknowledged it, so a receiver that is
down gets everything, in order, when it is back, and a crash between sending and the
acknowledgement repeats a notice (with the same idempotency key) rather than losing it. A
failed attempt is retried after an exponential backoff with jitter, until the notice is older
than the receiver's `give_up_after`: then it is dropped, logged and counted.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sereno.diagnostics import to_stderr
from sereno.notify.config import ReceiverSpec
from sereno.notify.notice import Notice, Planner
from sereno.notify.transport import DeliveryError, Sender
from sereno.output import counted
from sereno.store import Outbox, Queued

IDLE_POLL_SECONDS = 1.0  # how often an idle worker looks at the outbox without being woken


@dataclass
class ReceiverCounts:
    """What a receiver's worker did, for the metrics: written by that worker only."""

    sent: int = 0  # notices acknowledged
    failed: int = 0  # attempts that failed
    retried: int = 0  # attempts made again after a failure
    dropped: int = 0  # notices given up on


class Delivery:
    """Runs the receivers' workers over one outbox."""

    def __init__(
        self,
        outbox: Outbox,
        receivers: Sequence[ReceiverSpec],
        senders: Mapping[str, Sender],
        planner: Planner,
        log: Callable[[str], None] = to_stderr,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.log = log
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
        self._failures = 0  # attempts failed in a row
        self._refreshed_at = float("-inf")

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.woken.clear()
                queued = self._delivery.outbox.oldest(self.spec.name, self._sender.batch_size)
                if queued:
                    self._deliver(queued)
                else:
                    self._idle()
        finally:
            self._sender.close()

    def _deliver(self, queued: list[Queued]) -> None:
        outbox, too_old = self._delivery.outbox, time.time() - self.spec.timing.give_up_after
        stale = [item for item in queued if item.queued_at < too_old]
        if stale:
            outbox.remove(item.id for item in stale)
            self._counts.dropped += len(stale)
            self._say(
                f"gave up on {counted(len(stale), 'notification')} older than "
                f"{self.spec.timing.give_up_after:g}s; the last: {stale[-1].notice.text}"
            )
            return
        if self._attempt([item.notice for item in queued]):
            outbox.remove(item.id for item in queued)
            self._counts.sent += len(queued)

    def _idle(self) -> None:
        """Nothing queued: refresh what fires if it is time, then wait to be woken."""
        wait = IDLE_POLL_SECONDS
        if self.spec.type == "alertmanager":
            due = self._refreshed_at + self.spec.resend_interval - time.monotonic()
            if due <= 0 and self._refresh():
                self._refreshed_at = time.monotonic()
                due = self.spec.resend_interval
            wait = min(wait, due)
        self.woken.wait(wait)

    def _refresh(self) -> bool:
        """Send what fires again, as of the latest checkpoint, if all queued is sent (if
        not, that comes first: whether it was done)."""
        episodes = self._delivery.outbox.open_alerts_if_drained(self.spec.name)
        if episodes is None:
            return False
        firing = self._planner.firing_for(self.spec, episodes)
        size = self._sender.batch_size
        for start in range(0, len(firing), size):
            if not self._attempt(firing[start : start + size]):
                break  # the rest, at the next refresh
        return True

    def _attempt(self, notices: list[Notice]) -> bool:
        """Send; on failure, wait the backoff (or until stopped). Whether it was taken."""
        if self._failures:
            self._counts.retried += 1
        try:
            self._sender.send(notices)
        except Exception as error:  # DeliveryError; anything else must not stop the worker
            self._counts.failed += 1
            self._failures += 1
            if self._failures == 1:
                reason = error if isinstance(error, DeliveryError) else repr(error)
                self._say(f"{reason}; retrying with backoff")
            self.stopping.wait(self._backoff(getattr(error, "retry_after", None)))
            return False
        if self._failures:
            self._say(f"delivering again, after {counted(self._failures, 'failed attempt')}")
            self._failures = 0
        return True

    def _backoff(self, asked: float | None) -> float:
        """Doubling from `retry_backoff` up to `retry_backoff_max`, each wait between half
        and the whole of it, so that receivers coming back are not hit all at once; at least
        what the receiver `asked` for (Retry-After), up to `give_up_after`."""
        timing = self.spec.timing
        ceiling = min(timing.retry_backoff_max, timing.retry_backoff * 2.0 ** (self._failures - 1))
        jittered = ceiling * (0.5 + self._jitter() / 2)
        return max(jittered, min(asked or 0.0, timing.give_up_after))

    def _say(self, message: str) -> None:
        self._delivery.log(f"sereno: notify {self.spec.name}: {message}")
