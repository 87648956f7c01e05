"""`sereno serve`'s evaluation in a process of its own, so that answering pushes never waits
on it.

One interpreter runs one thread at a time. With the evaluator a thread of the HTTP process,
evaluating a minute of 100,000 events held the interpreter for tens of milliseconds at a time
while pushes waited to be answered. Here the HTTP process journals each batch and sends the
evaluator process its number; the evaluator reads the batch from the journal and takes it
through a `LiveEngine` of its own, which saves the state and queues the notifications as it
would in one process. After each step it sends back what the HTTP side shows and counts: the
batches taken, the counters, where evaluation stands, the minutes' durations, whether
notifications were queued and, when they changed, the open alerts. The fleet, larger and read
only by the page, is sent when asked for.

Silences and acknowledgements are made through the API, on the HTTP side, which saves them;
each change is also sent to the evaluator, down the same pipe as the batches, so that it plans
with them in the order they were made. A reload sends the rules' text and the receivers'
config, and waits for the evaluator to have taken them.

The evaluator is forked before any thread starts. It ignores SIGINT, SIGTERM and SIGHUP sent to
the process group: it stops when told to, or when the HTTP process is gone (the pipe closes),
once it has evaluated what it was sent.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import count
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.engine.records import AckRecord
from sereno.events.schema import Event, event_type
from sereno.garbage import collect_less_often
from sereno.live.core import LiveStats
from sereno.live.evaluator import QUEUE_BATCHES, RELOAD_TIMEOUT, LiveEngine
from sereno.live.fleet import FleetSnapshot, FleetView
from sereno.notify.config import NotifyConfig
from sereno.notify.planner import Planner
from sereno.notify.service import Notifications
from sereno.notify.silences import Silence
from sereno.rules.rulefmt import RuleSet, parse_rules
from sereno.state.store import JournalReader
from sereno.text import how_it_ended

SEND_BUFFER_BYTES = 1 << 20  # asked of each end of the pipe (Linux gives twice that)
STOP_TIMEOUT = 120.0  # for the evaluator to take what it was sent, then stop
FLEET_TIMEOUT = 5.0  # for the evaluator to send its fleet, else the last one it sent is shown
# the thread taking batches off the pipe waits for the interpreter at each read: every 0.5 ms
# rather than every 5, or it falls behind while the engine's thread evaluates a minute
SWITCH_SECONDS = 0.0005

_T = TypeVar("_T")


@dataclass(frozen=True)
class EngineHooks:
    """What the evaluator's `LiveEngine` tells, to be sent to the HTTP process."""

    planner: Planner
    on_window: Callable[[float], None]
    on_queued: Callable[[], None]
    on_progress: Callable[[int], None]


# from the HTTP process to the evaluator


@dataclass(frozen=True)
class _Take:
    seq: int  # a batch of the journal


@dataclass(frozen=True)
class _Silenced:
    silence: Silence


@dataclass(frozen=True)
class _Acked:
    alert_id: str
    ack: AckRecord | None


@dataclass(frozen=True)
class _Reload:
    number: int  # answered with it
    text: str
    source: str
    config: NotifyConfig


@dataclass(frozen=True)
class _FleetWanted:
    number: int  # answered with it


@dataclass(frozen=True)
class _Stop:
    pass


# from the evaluator to the HTTP process


@dataclass
class _Progress:
    taken: int  # batches, since the start
    stats: LiveStats
    evaluated_before: float
    saved_before: float
    windows: list[float] = field(default_factory=list)  # each minute's evaluation, in seconds
    queued: bool = False  # notifications were queued
    alerts: bytes | None = None  # msgpack, when they changed
    fleet: bytes | None = None  # pickled, in the first progress only


@dataclass(frozen=True)
class _Fleet:
    number: int
    fleet: bytes  # pickled


@dataclass(frozen=True)
class _Reloaded:
    number: int
    problem: str | None


@dataclass(frozen=True)
class _Failed:
    error: Exception


class EvaluatorGone(Exception):
    """The evaluator process stopped without being told to."""


class EvaluatorProcess:
    """A `LiveEngine` in a process of its own, seen from the HTTP process: what it sends back
    is kept here and read by the API; batches, silences, acks and reloads are sent to it."""

    def __init__(
        self,
        ruleset: RuleSet,
        db: Path,
        notifications: Notifications,
        engine: Callable[[EngineHooks], LiveEngine],
        on_window: Callable[[float], None] = lambda seconds: None,
        not_inherited: Sequence[socket.socket] = (),
    ) -> None:
        self.ruleset = ruleset
        self.event_type = event_type(ruleset.fields)
        self.stats = LiveStats()
        self.evaluated_before = self.saved_before = float("-inf")
        self.failure: Exception | None = None
        self._db = db
        self._notifications = notifications
        self._engine = engine  # made in the evaluator process
        self._on_window = on_window
        self._not_inherited = not_inherited  # closed in the evaluator: a listening socket
        self._on_failure: Callable[[Exception], None] = lambda error: None
        self._sent = self._taken = 0  # batches
        self._alerts = _Published[list[Episode]]([], msgspec.msgpack.Decoder(list[Episode]).decode)
        self._fleet = _Published[FleetSnapshot | None](None, pickle.loads)
        self._sending = threading.Lock()
        self._answers = _Answers()
        self._stopping = False
        ours, theirs = multiprocessing.Pipe()
        for end in (ours, theirs):
            _widen(end)
        self._connection, self._their_end = ours, theirs
        context = multiprocessing.get_context("fork")
        self._process = context.Process(target=self._evaluate, name="sereno-evaluator")
        self._listener = threading.Thread(target=self._listen, name="sereno-evaluator-listener")

    def start(self, on_failure: Callable[[Exception], None] = lambda error: None) -> None:
        """Fork the evaluator, before any other thread starts, and wait until it has picked
        up the saved state and the journal; raise what it failed on, if it did."""
        self._process.start()
        self._their_end.close()
        first = self._receive()
        if isinstance(first, _Failed):
            self._process.join()
            raise first.error
        if first is None:
            self._process.join()
            ended = how_it_ended(self._process.exitcode)
            raise EvaluatorGone(f"the evaluator stopped while starting ({ended})")
        self._take(first)
        self._notifications.silences.tell_changes_to(lambda s: self._send(_Silenced(s)))
        self._notifications.acks.tell_changes_to(lambda i, a: self._send(_Acked(i, a)))
        self._on_failure = on_failure
        self._listener.start()

    def stop(self) -> None:
        """Have the evaluator take what it was sent, then stop; wait for it."""
        self._stopping = True
        self._send(_Stop())
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._listener.join()

    @property
    def running(self) -> bool:
        return self.failure is None and self._process.is_alive()

    def has_room(self) -> bool:
        return self._sent - self._taken < QUEUE_BATCHES

    def submit(self, seq: int, events: list[Event]) -> None:
        """Have the evaluator take the journal's batch `seq` (it reads the events there)."""
        self._sent += 1
        self._send(_Take(seq))

    def reload(self, ruleset: RuleSet, planner: Planner | None = None) -> None:
        """Have the evaluator read the same rules, and plan for the receivers the HTTP side
        now notifies; raise `TimeoutError` if it does not answer in time."""
        if not self.running:
            raise TimeoutError("the evaluator is not running")
        config = planner.config if planner is not None else self._notifications.config
        number = self._answers.expect()
        self._send(_Reload(number, ruleset.text, ruleset.source, config))
        answer = self._answers.wait(number, RELOAD_TIMEOUT)
        if not isinstance(answer, _Reloaded):
            raise TimeoutError("the evaluator did not take the new rules in time")
        if answer.problem is not None:
            raise TimeoutError(f"the evaluator did not take the new rules: {answer.problem}")
        self.ruleset, self.event_type = ruleset, event_type(ruleset.fields)

    def alerts(self) -> list[Episode]:
        return self._alerts.value()

    def fleet(self) -> FleetView:
        """The fleet of the evaluator's latest checkpoint (the last one it sent, if it does
        not answer in time)."""
        if self.running:
            number = self._answers.expect()
            self._send(_FleetWanted(number))
            answer = self._answers.wait(number, FLEET_TIMEOUT)
            if isinstance(answer, _Fleet):
                self._fleet.replace(answer.fleet)
        snapshot = self._fleet.value()
        assert snapshot is not None  # the first progress had one
        return snapshot.view

    def _send(self, message: object) -> None:
        with self._sending, suppress(OSError):  # the evaluator is gone: the listener says so
            self._connection.send(message)

    def _receive(self) -> Any:
        """The next message from the evaluator; None once it is gone."""
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            return None

    def _listen(self) -> None:
        while (message := self._receive()) is not None:
            if isinstance(message, _Failed):
                self._fail(message.error)
            elif isinstance(message, _Reloaded | _Fleet):
                self._answers.answer(message.number, message)
            else:
                self._take(message)
        self._process.join()
        if not self._stopping:
            ended = how_it_ended(self._process.exitcode)
            self._fail(EvaluatorGone(f"the evaluator stopped unexpectedly ({ended})"))

    def _fail(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = error
            self._on_failure(error)

    def _take(self, progress: _Progress) -> None:
        self._taken = progress.taken
        self.stats, self.evaluated_before = progress.stats, progress.evaluated_before
        self.saved_before = progress.saved_before
        for seconds in progress.windows:
            self._on_window(seconds)
        if progress.alerts is not None:
            self._alerts.replace(progress.alerts)
        if progress.fleet is not None:
            self._fleet.replace(progress.fleet)
        if progress.queued:
            self._notifications.delivery.wake()

    def _evaluate(self) -> None:
        """The evaluator process: `_Evaluator` until told to stop or the pipe closes."""
        for ignored in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(ignored, signal.SIG_IGN)
        sys.setswitchinterval(SWITCH_SECONDS)
        collect_less_often()  # what the HTTP process made is set aside, long-lived
        self._connection.close()
        for inherited in self._not_inherited:
            inherited.close()
        connection = self._their_end
        try:
            _Evaluator(connection, self.ruleset, self._db, self._notifications, self._engine).run()
        except Exception as error:  # sent as it is, so the HTTP side says what it was
            with suppress(OSError):  # unless the HTTP side is gone
                connection.send(_Failed(_sendable(error)))
        finally:
            connection.close()


class _Evaluator:
    """The evaluator process's side: a `LiveEngine` fed the batches, and its progress sent."""

    def __init__(
        self,
        connection: Connection,
        ruleset: RuleSet,
        db: Path,
        notifications: Notifications,
        engine: Callable[[EngineHooks], LiveEngine],
    ) -> None:
        self._connection, self._db = connection, db
        self._sending = threading.Lock()
        # this process's copy of the books, kept up to date by the HTTP side's messages
        notifications.silences = notifications.silences.unstored()
        notifications.acks = notifications.acks.unstored()
        self._notifications = notifications
        planner = notifications.planner_for(notifications.config, ruleset)
        self._windows: list[float] = []
        self._queued = False
        self._sent_alerts: list[Episode] | None = None
        hooks = EngineHooks(planner, self._windows.append, self._note_queued, self._progress)
        self._live = engine(hooks)

    def run(self) -> None:
        live = self._live
        live.start(on_failure=lambda error: self._send(_Failed(_sendable(error))))
        self._progress(0, with_fleet=True)
        reader = JournalReader(self._db)
        while True:
            try:
                message = self._connection.recv()
            except EOFError:
                break
            if isinstance(message, _Stop):
                break
            if isinstance(message, _Take):
                if live.running:  # else it failed, and said so: the HTTP side stops
                    live.submit(message.seq, reader.batch(message.seq, live.event_type))
            elif isinstance(message, _Silenced):
                self._notifications.silences.keep(message.silence)
            elif isinstance(message, _Acked):
                self._notifications.acks.keep(message.alert_id, message.ack)
            elif isinstance(message, _Reload):
                self._send(_Reloaded(message.number, self._reload(message)))
            elif isinstance(message, _FleetWanted):
                self._send(_Fleet(message.number, pickle.dumps(live.fleet_snapshot())))
        live.stop()
        reader.close()

    def _reload(self, request: _Reload) -> str | None:
        try:
            ruleset = parse_rules(request.text, request.source)
            planner = self._notifications.planner_for(request.config, ruleset)
            self._live.reload(ruleset, planner)
        except Exception as error:
            return str(error)
        return None

    def _note_queued(self) -> None:
        self._queued = True

    def _progress(self, taken: int, with_fleet: bool = False) -> None:
        """Send what changed (from the engine's worker thread, after each step)."""
        live = self._live
        with self._sending:
            progress = _Progress(
                taken, live.stats, live.evaluated_before, live.saved_before, self._windows[:]
            )
            self._windows.clear()
            progress.queued, self._queued = self._queued, False
            alerts = live.alerts()
            if alerts is not self._sent_alerts:
                progress.alerts, self._sent_alerts = msgspec.msgpack.encode(alerts), alerts
            if with_fleet:
                progress.fleet = pickle.dumps(live.fleet_snapshot())
            self._send_now(progress)

    def _send(self, message: object) -> None:
        with self._sending:
            self._send_now(message)

    def _send_now(self, message: object) -> None:
        with suppress(OSError):  # the HTTP side is gone: the pipe's end stops this process
            self._connection.send(message)


class _Published(Generic[_T]):
    """A value the evaluator sent encoded: decoded when first read, once (the HTTP side
    does not pay for values nobody reads)."""

    def __init__(self, value: _T, decode: Callable[[bytes], Any]) -> None:
        self._value, self._encoded, self._decode = value, b"", decode
        self._lock = threading.Lock()

    def replace(self, encoded: bytes) -> None:
        with self._lock:
            self._encoded = encoded

    def value(self) -> _T:
        with self._lock:
            if self._encoded:
                self._value, self._encoded = cast(_T, self._decode(self._encoded)), b""
            return self._value


class _Answers:
    """The evaluator's answers to numbered requests, each for the one who asked."""

    def __init__(self) -> None:
        self._numbers = count(1)
        self._waiting: set[int] = set()
        self._answers: dict[int, object] = {}
        self._came = threading.Condition()

    def expect(self) -> int:
        """The number of a new request, whose answer is kept until taken."""
        with self._came:
            number = next(self._numbers)
            self._waiting.add(number)
            return number

    def answer(self, number: int, answer: object) -> None:
        with self._came:
            if number in self._waiting:  # else it came too late: no one waits for it
                self._answers[number] = answer
                self._came.notify_all()

    def wait(self, number: int, timeout: float) -> object | None:
        """The answer to request `number`; None if it does not come within `timeout`."""
        with self._came:
            self._came.wait_for(lambda: number in self._answers, timeout)
            self._waiting.discard(number)
            return self._answers.pop(number, None)


def _widen(connection: Connection) -> None:
    """Let the socket hold every message that may wait, where the system allows it: the
    batches' numbers (`QUEUE_BATCHES` of them) one way, so that the HTTP side never waits on
    the evaluator, and a checkpoint's open alerts (about 1 MB for 2,500) the other, so that the
    evaluator seldom waits for the HTTP side to read them."""
    with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as widened:
        widened.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def _sendable(error: Exception) -> Exception:
    """The error itself if it can be sent whole, else one saying what it was."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
