"""`sereno FILE --jobs N`: one file evaluated by N processes, each for a share of the services.

Every job reads and decodes the whole file and takes it through the same windows, so each
knows exactly as one process would which records are bad, late or ahead of the fleet, and
when each minute closes; each evaluates only its own services (`Shard`). This process is job
0: it reports the input's problems as they come, and writes each minute's lines of all jobs
merged in the order one process writes them. The others are forked processes that send, for
each minute, their lines and where each goes; at the end, their counts and condition errors.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import IO

import msgspec

from sereno.cli.diagnostics import Diagnostics
from sereno.cli.options import InputError
from sereno.cli.pipeline import finish, open_pipeline
from sereno.engine.alerts import Alert
from sereno.engine.engine import Engine
from sereno.engine.lifecycle import Episode
from sereno.engine.shard import Shard, shares_by_service
from sereno.errors import SerenoError
from sereno.events.schema import Event
from sereno.rules.conditions import ConditionError
from sereno.rules.rulefmt import RuleSet, RuleSpec
from sereno.sinks.console import LineSink

MIN_BYTES_FOR_JOBS = 64 << 20  # smaller files are done before the other jobs would start
MAX_JOBS = 256

SortKey = tuple[int | float, int, str, str]
FirstError = tuple[int, int, int]  # (minute, rule rank, the sample's place in the minute)


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


class JobFailed(SerenoError):
    """Another job stopped, or went out of step."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def jobs_for(args: argparse.Namespace, ruleset: RuleSet) -> int:
    """How many jobs a run takes: as asked (by default one per core for a file of 64 MB or
    more); one for standard input, `--strict`, `--notices` (whose changes one process tells
    in one order), and rules that inhibit across services."""
    if args.file == "-" or args.strict or args.notices or not shares_by_service(ruleset):
        return 1
    if args.jobs is not None:
        return int(args.jobs)
    try:
        size = os.stat(args.file).st_size
    except OSError:
        return 1  # reading it says what is wrong
    return available_cores() if size >= MIN_BYTES_FOR_JOBS else 1


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
            window = self.engine.window
            place = list(window.latest).index((event.server, event.component))
            rank = self.engine.rule_order[spec.name]
            self.first_at[spec.name] = (window.start, rank, place)
        self.problems.condition(spec, event, error)

    def errors(self) -> dict[str, tuple[int, str, FirstError]]:
        return {
            rule: (count, first, self.first_at[rule])
            for rule, (count, first) in self.problems.condition_errors.items()
        }


class _Unreported(Diagnostics):
    """A job other than the first counts the input's problems and says nothing: the first
    job meets the same ones and reports them."""

    def _report(self, message: str) -> None:
        pass


@dataclass
class _Job:
    args: argparse.Namespace
    ruleset: RuleSet
    sink: LineSink
    shard: Shard
    now: float
    size: int  # of the file when the run started: what every job reads
    problems: Diagnostics
    per_rule: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.keyed = _Keyed(self.problems)

    def minutes(self, stack: ExitStack) -> Iterator[Lines]:
        """Each evaluated minute's lines (and, for episodes, the still firing ones last)."""
        run = open_pipeline(
            self.args,
            self.ruleset,
            self.problems,
            stack,
            self.now,
            on_condition_error=self.keyed.condition,
            shard=self.shard,
            progress=self.shard.index == 0,
            upto=self.size,
        )
        self.reader = run.reader
        engine = self.keyed.engine = run.engine
        for alerts in engine.run_batches(run.batches, run.windows, self.problems):
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


def _run_other_job(job: _Job, connection: Connection) -> None:
    """A forked job's whole life: its minutes, then its end, through `connection`."""
    try:
        with ExitStack() as stack:
            for minute in job.minutes(stack):
                connection.send_bytes(_encoder.encode(minute))
        connection.send_bytes(_encoder.encode(job.done()))
    except BaseException as error:  # whatever stops it is told to the first job
        connection.send_bytes(_encoder.encode(Failed(str(error) or type(error).__name__)))
    finally:
        connection.close()


class _OtherJob:
    """The first job's view of another one: its messages, in turn."""

    def __init__(self, job: _Job, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._name = f"job {job.shard.index + 1} of {count}"
        self._process = context.Process(
            target=_run_other_job, args=(job, send), name=self._name, daemon=True
        )
        self._process.start()
        send.close()

    def _next(self) -> Lines | Done:
        try:
            message = _decoder.decode(self._receive.recv_bytes())
        except EOFError:
            self._process.join()
            raise JobFailed(f"{self._name} stopped unexpectedly ({self._how_it_ended()})") from None
        except msgspec.DecodeError as error:
            raise JobFailed(f"{self._name} sent what is not a job's message: {error}") from None
        if isinstance(message, Failed):
            raise JobFailed(f"{self._name}: {message.message}")
        return message

    def _how_it_ended(self) -> str:
        code = self._process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

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


def run_in_jobs(
    args: argparse.Namespace, ruleset: RuleSet, sink: LineSink, count: int, stdout: IO[bytes]
) -> int:
    now, size = time.time(), _size(args.file)
    others: list[_OtherJob] = []
    problems = Diagnostics(strict=False)
    first = _Job(args, ruleset, sink, Shard(0, count), now, size, problems)
    try:
        for index in range(1, count):
            unreported = _Unreported(strict=False)
            job = _Job(args, ruleset, sink, Shard(index, count), now, size, unreported)
            others.append(_OtherJob(job, count))
        with ExitStack() as stack:
            for minute in first.minutes(stack):
                _write_merged([minute, *(other.lines() for other in others)], stdout)
            stdout.flush()
        ends = [first.done(), *(other.done() for other in others)]
    finally:
        for other in others:
            other.stop()
    per_rule = Counter[str]()
    for end in ends:
        per_rule.update(end.per_rule)
    _take_condition_errors(problems, ends)
    return finish(args, ruleset, problems, first.reader, per_rule)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None


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
