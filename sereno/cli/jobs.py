"""`sereno FILE --jobs N`: one file evaluated by N processes, each for a share of the services.

This process is job 0. It reads, decodes and windows the whole input, exactly as one process
does, so it alone decides which records are bad, late or ahead of the fleet, and when each
minute closes; it reports the input's problems as they come. Each window it closes is split
by service (`Shares`): it evaluates its own part and hands each other job its part (the
events in the order they came, with the place each had in the whole window). The other jobs
are forked processes that evaluate the parts they are handed, in order, and send back for
each minute their lines and where each goes; at the end, their counts and condition errors.
Job 0 writes each minute's lines of all jobs merged in the order one process writes them.

Job 0 keeps handing windows, in pieces, while the others evaluate (a thread per job sends,
another receives), and merges a minute once `MERGE_LAG` later ones are evaluated, so that no
job waits for another minute by minute.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import multiprocessing
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from operator import attrgetter, itemgetter
from typing import IO, Protocol

import msgspec

from sereno.cli.diagnostics import Diagnostics
from sereno.cli.pipeline import engine_for, finish, open_pipeline
from sereno.engine.alerts import Alert
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode
from sereno.engine.shard import Shares
from sereno.engine.windows import Window
from sereno.errors import SerenoError
from sereno.events.schema import Event, event_type
from sereno.rules.conditions import ConditionError
from sereno.rules.rulefmt import RuleSet, RuleSpec
from sereno.sinks.console import LineSink
from sereno.text import how_it_ended

HANDED_AHEAD = 16  # pieces handed to a job and not yet sent to it: how far job 0 may run ahead
PIPE_BYTES = 1 << 20
MERGE_LAG = 8  # minutes evaluated by job 0 before it waits for the others' lines of a minute
# a window's part is handed in pieces: a job takes a minute in while it is still handed, and
# no message is so large that a minute of a large fleet leaves its memory behind
PIECE_EVENTS = 10_000

SortKey = tuple[int | float, int, str, str]
FirstError = tuple[int, int, int]  # (minute, rule rank, the sample's place in the minute)

_sample_key = attrgetter("server", "component")


class Part(msgspec.Struct, tag=True):
    """Some of a job's part of a window, `PIECE_EVENTS` events at most (`last`: the rest of
    it has been handed): the events (in msgpack; as JSON Lines, in a msgpack string of bytes,
    when an extra field holds an integer beyond 64 bits, which msgpack cannot) and the place
    each had in the whole window."""

    start: int
    places: list[int]
    events: msgspec.Raw
    as_json: bool = False
    last: bool = True


class End(msgspec.Struct, tag=True):
    """No more windows: the input is over."""


class Lines(msgspec.Struct, tag=True):
    """One minute's lines of a job, each with where it goes among all jobs' lines."""

    keys: list[SortKey]
    lines: list[bytes]


class Done(msgspec.Struct, tag=True):
    """A job's end: its lines per rule, and per rule its condition errors (how many, the
    first one's message and where it came)."""

    per_rule: dict[str, int]
    condition_errors: dict[str, tuple[int, str, FirstError]]


class Failed(msgspec.Struct, tag=True):
    message: str


_encoder = msgspec.msgpack.Encoder()
Message = Lines | Done | Failed
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
_handed: msgspec.msgpack.Decoder[Part | End] = msgspec.msgpack.Decoder(Part | End)
_END = _encoder.encode(End())
_json_lines = msgspec.json.Encoder()


class JobFailed(SerenoError):
    """Another job stopped, or went out of step."""


@dataclass
class _Keyed:
    """A job's condition errors, with where the first of each rule came, so that the jobs'
    firsts can be told apart as one process would have met them."""

    problems: Diagnostics
    engine: Engine | None = None
    first_at: dict[str, FirstError] = field(default_factory=dict)

    def condition(self, spec: RuleSpec, event: Event, error: ConditionError) -> None:
        if spec.name not in self.first_at:
            assert self.engine is not None and self.engine.window is not None  # evaluating
            part = self.engine.window
            assert part.places is not None  # a part of a window: every job evaluates one
            # the first event of the sample's server and component: samples are in the order
            # of those, in one process's window
            index = list(map(_sample_key, part.events)).index(_sample_key(event))
            rank = self.engine.rule_order[spec.name]
            self.first_at[spec.name] = (part.start, rank, part.places[index])
        self.problems.condition(spec, event, error)

    def errors(self) -> dict[str, tuple[int, str, FirstError]]:
        return {
            rule: (count, first, self.first_at[rule])
            for rule, (count, first) in self.problems.condition_errors.items()
        }


@dataclass
class _Job:
    """What every job does with the windows it evaluates: make each minute's lines."""

    args: argparse.Namespace
    sink: LineSink
    problems: Diagnostics = field(default_factory=lambda: Diagnostics(strict=False))
    per_rule: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.keyed = _Keyed(self.problems)

    def minutes(self, engine: Engine, evaluated: Iterable[list[Alert]]) -> Iterator[Lines]:
        """Each evaluated minute's lines (and, for episodes, the still firing ones last)."""
        self.keyed.engine = engine
        for alerts in evaluated:
            if self.args.episodes:
                yield self._episodes(engine, engine.take_resolved())
            else:
                yield self._alerts(engine, alerts)
        if self.args.episodes:
            yield self._episodes(engine, engine.firing())

    def _alerts(self, engine: Engine, alerts: list[Alert]) -> Lines:
        self.per_rule.update(alert.rule for alert in alerts)
        found = engine.found
        assert found is not None  # the minute these alerts fire in
        keys: list[SortKey] = found.order
        if alerts is not found.alerts:  # those of the minute's alerts that fire, in order
            firing = set(map(id, alerts))
            keys = [
                key for key, alert in zip(keys, found.alerts, strict=True) if id(alert) in firing
            ]
        return Lines(keys, self.sink.alert_lines(alerts))

    def _episodes(self, engine: Engine, episodes: list[Episode]) -> Lines:
        self.per_rule.update(episode.key.rule for episode in episodes)
        keys: list[SortKey] = list(map(engine.episode_order, episodes))
        return Lines(keys, self.sink.episode_lines(episodes))

    def done(self) -> Done:
        return Done(dict(self.per_rule), self.keyed.errors())


class _Evaluating(Protocol):
    """A job other than the first, as the process it runs in sees it."""

    def lines(self, handed: Connection) -> Iterator[Lines]:
        """The lines of each part handed through `handed`, then any last ones."""
        ...

    def done(self) -> Done: ...


@dataclass
class _PartsJob:
    """A job other than the first: it evaluates the parts of windows it is handed."""

    job: _Job
    ruleset: RuleSet

    def lines(self, handed: Connection) -> Iterator[Lines]:
        engine = engine_for(self.job.args, self.ruleset, self.job.keyed.condition)
        events = _EventsDecoder(event_type(self.ruleset.fields))
        return self.job.minutes(engine, map(engine.evaluate, _parts(handed, events)))

    def done(self) -> Done:
        return self.job.done()


def _run_other_job(
    job: _Evaluating, handed: Connection, connection: Connection, first_jobs: list[Connection]
) -> None:
    """A forked job's whole life: the parts it is handed through `handed`, its lines and
    then its end through `connection`. `first_jobs`: the first job's ends of the jobs'
    pipes, which the fork copied: closed, so that this job sees the end of `handed` if the
    first job dies, and no other job waits on this one's copies."""
    for end in first_jobs:
        end.close()
    try:
        for minute in job.lines(handed):
            connection.send_bytes(_encoder.encode(minute))
        connection.send_bytes(_encoder.encode(job.done()))
    except BaseException as error:  # whatever stops it is told to the first job, if alive
        with contextlib.suppress(OSError):
            connection.send_bytes(_encoder.encode(Failed(str(error) or type(error).__name__)))
    finally:
        connection.close()


class _EventsDecoder:
    """A piece's events, as `_pieces` made them."""

    def __init__(self, events: type[Event]) -> None:
        self._msgpack = msgspec.msgpack.Decoder(list[events])  # type: ignore[valid-type]
        self._json = msgspec.json.Decoder(events)

    def decode(self, part: Part) -> list[Event]:
        if part.as_json:
            return self._json.decode_lines(msgspec.msgpack.decode(part.events, type=bytes))
        return self._msgpack.decode(part.events)


def _parts(handed: Connection, events: _EventsDecoder) -> Iterator[Window]:
    """The windows handed, as the first job split them, until the end of the input."""
    while isinstance(message := _handed.decode(handed.recv_bytes()), Part):
        part = Window(message.start)
        part.events, part.places = events.decode(message), message.places
        while not message.last:
            message = _handed.decode(handed.recv_bytes())
            assert isinstance(message, Part)  # the pieces of one part come together
            part.events += events.decode(message)
            part.places += message.places
        yield part


def _pieces(part: Window) -> Iterator[bytes]:
    """The part's messages: its events and their places, a piece at a time."""
    assert part.places is not None
    count = len(part.events)
    for first in range(0, max(count, 1), PIECE_EVENTS):
        piece = part.events[first : first + PIECE_EVENTS]
        try:
            events, as_json = _encoder.encode(piece), False
        except OverflowError:  # an extra field the rules read holds an integer beyond 64 bits
            events, as_json = _encoder.encode(_json_lines.encode_lines(piece)), True
        places = part.places[first : first + PIECE_EVENTS]
        last = first + PIECE_EVENTS >= count
        yield _encoder.encode(Part(part.start, places, msgspec.Raw(events), as_json, last))


class _OtherJob:
    """The first job's view of another one: a forked process, a thread that hands it its
    parts (`hand`, `end`), another that takes its messages, in turn (`lines`, `done`)."""

    def __init__(
        self, job: _Evaluating, index: int, count: int, started: Sequence[_OtherJob] = ()
    ) -> None:
        """Job `index` of `count`, forked after the jobs `started`."""
        context = multiprocessing.get_context("fork")
        handed, self._hand = context.Pipe(duplex=False)
        self._receive, send = context.Pipe(duplex=False)
        self._name = f"job {index + 1} of {count}"
        first_jobs = [end for other in [*started, self] for end in (other._hand, other._receive)]
        self._process = context.Process(
            target=_run_other_job,
            args=(job, handed, send, first_jobs),
            name=self._name,
            daemon=True,
        )
        self._process.start()
        handed.close()
        send.close()
        for end in (self._hand, self._receive):
            _widen(end)
        self._to_hand: queue.Queue[bytes] = queue.Queue(maxsize=HANDED_AHEAD)
        self._received: queue.Queue[bytes | None] = queue.Queue()
        for target in (self._handing, self._receiving):
            threading.Thread(
                target=target, name=f"{self._name}: {target.__name__}", daemon=True
            ).start()

    def hand(self, part: Window) -> None:
        for piece in _pieces(part):
            self._to_hand.put(piece)

    def end(self) -> None:
        self._to_hand.put(_END)

    def _handing(self) -> None:
        sending = True
        while True:
            message = self._to_hand.get()
            if sending:
                try:
                    self._hand.send_bytes(message)
                except OSError:  # the job is gone: `_next` tells how; the rest is dropped
                    sending = False
            if message is _END:
                self._hand.close()
                return

    def _receiving(self) -> None:
        try:
            while True:
                self._received.put(self._receive.recv_bytes())
        except (EOFError, OSError):
            self._received.put(None)

    def _next(self) -> Lines | Done:
        data = self._received.get()
        if data is None:
            self._process.join()
            ended = how_it_ended(self._process.exitcode)
            raise JobFailed(f"{self._name} stopped unexpectedly ({ended})")
        try:
            message = _decoder.decode(data)
        except msgspec.DecodeError as error:
            raise JobFailed(f"{self._name} sent what is not a job's message: {error}") from None
        if isinstance(message, Failed):
            raise JobFailed(f"{self._name}: {message.message}")
        return message

    def lines(self) -> Lines:
        message = self._next()
        if not isinstance(message, Lines):
            raise JobFailed(f"{self._name} ended before the first job")
        return message

    def done(self) -> Done:
        message = self._next()
        if not isinstance(message, Done):
            raise JobFailed(f"{self._name} went on after the first job ended")
        self._process.join()
        return message

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._to_hand.put(_END)  # the handing thread ends (it drops what a dead job cannot take)


def _widen(pipe: Connection) -> None:
    """Let a pipe hold a few pieces at once (where the system allows it), so that a job
    rarely waits for the other end to make room."""
    with contextlib.suppress(OSError):  # beyond the limit for this user: the default works
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


@dataclass
class _Router:
    """Job 0's part of each window; the other jobs' parts are handed to them."""

    shares: Shares
    others: list[_OtherJob]

    def __call__(self, window: Window) -> Window:
        own, *parts = self.shares.split(window)
        for other, part in zip(self.others, parts, strict=True):
            other.hand(part)
        return own


def run_in_jobs(
    args: argparse.Namespace, ruleset: RuleSet, sink: LineSink, count: int, stdout: IO[bytes]
) -> int:
    problems = Diagnostics(strict=False)
    first = _Job(args, sink, problems)
    others: list[_OtherJob] = []
    try:
        for index in range(1, count):
            job = _PartsJob(_Job(args, sink), ruleset)
            others.append(_OtherJob(job, index, count, others))
        router = _Router(Shares(count), others)
        with ExitStack() as stack:
            run = open_pipeline(
                args,
                ruleset,
                problems,
                stack,
                time.time(),
                on_condition_error=first.keyed.condition,
                own_part=router,
            )
            evaluated = run.engine.run_batches(run.batches, run.windows, problems)
            waiting: deque[Lines] = deque()  # job 0's lines of the minutes not yet written

            def write_oldest() -> None:
                _write_merged([waiting.popleft(), *(other.lines() for other in others)], stdout)

            for minute in first.minutes(run.engine, evaluated):
                waiting.append(minute)
                if len(waiting) > MERGE_LAG:
                    write_oldest()
            for other in others:
                other.end()
            while waiting:
                write_oldest()
            stdout.flush()
        ends = [first.done(), *(other.done() for other in others)]
    finally:
        for other in others:
            other.stop()
    per_rule = Counter[str]()
    for end in ends:
        per_rule.update(end.per_rule)
    _take_condition_errors(problems, ends)
    return finish(args, ruleset, problems, run.reader, per_rule)


def _write_merged(minutes: Sequence[Lines], stdout: IO[bytes]) -> None:
    """One minute's lines of every job, in the order one job would write them (no two jobs
    share a service, so no two lines of different jobs go in the same place)."""
    keyed = [pair for minute in minutes for pair in zip(minute.keys, minute.lines, strict=True)]
    keyed.sort(key=itemgetter(0))
    stdout.write(b"".join(map(itemgetter(1), keyed)))


def _take_condition_errors(problems: Diagnostics, ends: Sequence[Done]) -> None:
    """Every job's condition errors, summed per rule, with the first one met, in the order
    one process would have met them."""
    merged: dict[str, tuple[int, str, FirstError]] = {}
    for end in ends:
        for rule, (count, message, first_at) in end.condition_errors.items():
            known = merged.get(rule)
            if known is None:
                merged[rule] = (count, message, first_at)
            else:
                earlier = min((known[2], known[1]), (first_at, message))
                merged[rule] = (known[0] + count, earlier[1], earlier[0])
    in_order = sorted(merged.items(), key=lambda item: item[1][2])
    problems.condition_errors = {rule: (count, first) for rule, (count, first, _) in in_order}
