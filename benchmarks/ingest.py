"""Sustained ingest of `sereno serve` over loopback: `python benchmarks/ingest.py FILE`.

Reads FILE once, sorts its events by timestamp, cuts them into batches of 1,000 and encodes
each as a JSON Lines body. Then starts `sereno serve` (default rules, working in a fresh
temporary directory, on a free 127.0.0.1 port) and has two pushing processes POST the bodies
back to back, each over one keep-alive connection, taking batches in turn (one the even
batches, the other the odd ones); a 503 (the evaluator is behind) is waited out and the same
batch sent again. Both move through event time together, as agents reporting in real time do:
a pusher does not send a batch whose newest event is more than half the allowed lateness ahead
of the batch the other is sending, or will send next (the file's hour goes by in seconds, and a
pusher that got more of the two cores would otherwise run ahead of the other by more than the
lateness, and make the other's events late). Meanwhile a thread polls
GET /alerts every 20 ms, until 5 s after the last 202. The pushers are forked (Linux).

It measures:

  throughput     events accepted / seconds from the first request sent to the last 202
  POST latency   seconds from sending a request to its answer (p50, p99): what an agent
                 waits, journalling included
  alert latency  for each alert, the moment a poll first listed it less the moment the
                 service had the event that closes its minute: the earliest 202 of a batch
                 holding an event `allowed lateness` seconds past the minute's end

and prints them against the targets (100,000 events/s; p99 latency 1 s), with the requests,
the 503 retries, the service's count of late events, how long after the last 202 the
evaluator had every event, the alerts listed before their minute closed (negative latency),
the alerts of minutes the file never closes (no latency) and the alerts of the alerts log
that no poll saw. `--runs N` repeats it all, with a new server each time, and prints the
medians. Make FILE with benchmarks/generate.py.
"""

from __future__ import annotations

import argparse
import bisect
import ctypes
import math
import multiprocessing
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as StartSignal
from pathlib import Path
from typing import NamedTuple

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families
from run import sereno_command  # the `sereno` beside the Python that runs this

from sereno.events.schema import Event

BATCH_EVENTS = 1000
PUSHERS = 2
WINDOW_SECONDS = 60
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_P99_SECONDS = 1.0
RETRY_PAUSE = 0.005  # after a 503, before the same batch is sent again
PACE_PAUSE = 0.0005  # while a pusher waits for the others to catch up
AFTER_PUSHING = 5.0  # how long the poller goes on after the last 202
READY_WITHIN = 60.0
EVALUATED = "sereno_events_evaluated_total"
NDJSON = {"content-type": "application/x-ndjson"}


@dataclass(frozen=True)
class Batches:
    """The file's events in time order, as request bodies, and each body's newest timestamp."""

    bodies: list[bytes]
    newest: list[float]
    events: int


@dataclass(frozen=True)
class Service:
    base_url: str
    alerts_log: Path


class Answer(msgspec.Struct):
    accepted: int
    rejected: int


class AlertKey(NamedTuple):
    """An alert as GET /alerts lists it: `since` is when it fired (pending: started)."""

    rule: str
    service: str
    server: str | None
    since: int


class ListedAlert(msgspec.Struct, frozen=True):
    """What GET /alerts says of an alert, as far as it matters here."""

    rule: str
    service: str
    server: str | None
    since: int


class LoggedChange(msgspec.Struct, frozen=True):
    """A line of the alerts log, as far as it matters here."""

    rule: str
    service: str
    server: str | None
    state: str
    started: int
    fired: int | None


class PusherResult(msgspec.Struct):
    """What one pusher did: when it sent its first request, and when each 202 came back."""

    pusher: int  # which of them: it took the batches pusher, pusher + PUSHERS, ...
    first_sent: float
    acknowledged: list[float]  # wall time of each batch's 202, in the pusher's order
    answered_in: list[float]  # seconds each request took, from sending to its answer
    accepted: int
    requests: int
    retries: int
    error: str | None = None


@dataclass(frozen=True)
class Run:
    events_per_second: float
    seconds: float
    requests: int
    retries: int
    post_p50: float  # seconds a POST /events took, from sending to its answer
    post_p99: float
    late_events: int
    caught_up: float  # seconds from the last 202 until every event was evaluated; NaN: never
    alerts: int  # with a latency
    early: int  # of them, seen before their minute closed (the service's early looks)
    p50: float
    p99: float
    worst: float
    unclosed: int  # alerts of minutes the file never closes: no latency
    unseen: int  # alerts in the alerts log that no poll saw
    poll_failures: int


@dataclass
class Poller:
    """Polls GET /alerts in a thread; `first_seen` is when each alert was first listed."""

    base_url: str
    every: float
    first_seen: dict[AlertKey, float] = field(default_factory=dict)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alerts-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after one more poll."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        decoder = msgspec.json.Decoder(list[ListedAlert])
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self._poll(client, decoder)
                self._stop.wait(max(0.0, self.every - (time.monotonic() - started)))
            self._poll(client, decoder)

    def _poll(self, client: httpx.Client, decoder: msgspec.json.Decoder[list[ListedAlert]]) -> None:
        try:
            response = client.get("/alerts")
            response.raise_for_status()
        except httpx.HTTPError:
            self.failures += 1
            return
        now = time.time()
        for alert in decoder.decode(response.content):
            key = AlertKey(alert.rule, alert.service, alert.server, alert.since)
            self.first_seen.setdefault(key, now)


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` lie (nearest rank); NaN if there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def read_events(path: Path) -> list[Event]:
    data = path.read_bytes()
    if data.lstrip()[:1] == b"[":
        return msgspec.json.decode(data, type=list[Event])
    return msgspec.json.Decoder(Event).decode_lines(data)


def make_batches(events: list[Event]) -> Batches:
    ordered = sorted(events, key=lambda event: event.timestamp)
    encoder = msgspec.json.Encoder()
    bodies, newest = [], []
    for start in range(0, len(ordered), BATCH_EVENTS):
        batch = ordered[start : start + BATCH_EVENTS]
        bodies.append(encoder.encode_lines(batch))
        newest.append(float(batch[-1].timestamp))
    return Batches(bodies, newest, len(ordered))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(lateness: float) -> Iterator[Service]:
    """`sereno serve` working in a fresh temporary directory, stopped and removed after."""
    with tempfile.TemporaryDirectory(prefix="sereno-ingest-") as directory:
        port = free_port()
        service = Service(f"http://127.0.0.1:{port}", Path(directory) / "alerts.jsonl")
        command = [
            *sereno_command(),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--alerts-log",
            str(service.alerts_log),
            "--allowed-lateness",
            str(lateness),
        ]
        errors = Path(directory) / "stderr.txt"
        with open(errors, "wb") as stderr:
            server = subprocess.Popen(
                command,
                cwd=directory,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C is for us: we stop it with SIGTERM
            )
        try:
            wait_until_ready(server, service.base_url, errors)
            yield service
        finally:
            stop(server)


def wait_until_ready(server: subprocess.Popen[bytes], base_url: str, errors: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"sereno serve exited with status {server.returncode}:\n{errors.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    sys.exit(f"sereno serve was not ready within {READY_WITHIN:.0f} s:\n{errors.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclass(frozen=True)
class Pace:
    """Keeps the pushers together in event time: the newest event of the batch each one is
    sending or will send next (infinite once it has sent all). The pusher whose batch is the
    oldest never waits."""

    sending: ctypes.Array[ctypes.c_double]
    lead: float  # how far ahead of the others a pusher may send

    def wait_for_others(self, pusher: int, newest: float) -> None:
        others = [i for i in range(len(self.sending)) if i != pusher]
        while min(self.sending[i] for i in others) < newest - self.lead:
            time.sleep(PACE_PAUSE)


def push(
    pusher: int,
    url: str,
    batches: Sequence[tuple[bytes, float]],
    pace: Pace,
    start: StartSignal,
    results: Queue[PusherResult],
) -> None:
    """One pusher process: POST the batches' bodies in order over one connection, once
    `start` is set, keeping pace with the others."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us, with SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result = PusherResult(pusher, 0.0, [], [], 0, 0, 0)
    try:
        with httpx.Client(timeout=60, headers=NDJSON) as client:
            start.wait()
            result.first_sent = time.time()
            for body, newest in batches:
                pace.sending[pusher] = newest
                pace.wait_for_others(pusher, newest)
                post_until_taken(client, url, body, result)
    except (httpx.HTTPError, RuntimeError) as error:
        result.error = f"{type(error).__name__}: {error}"
    pace.sending[pusher] = math.inf  # done: no one waits for it
    results.put(result)


def post_until_taken(client: httpx.Client, url: str, body: bytes, result: PusherResult) -> None:
    """POST `body` until it is answered 202, waiting a little after each 503."""
    while True:
        sent = time.perf_counter()
        response = client.post(url, content=body)
        result.answered_in.append(time.perf_counter() - sent)
        result.requests += 1
        if response.status_code == 202:
            result.acknowledged.append(time.time())
            answer = msgspec.json.decode(response.content, type=Answer)
            if answer.rejected:
                raise RuntimeError(f"{answer.rejected} events rejected: {response.text[:200]}")
            result.accepted += answer.accepted
            return
        if response.status_code != 503:
            raise RuntimeError(f"answered {response.status_code}: {response.text[:200]}")
        result.retries += 1
        time.sleep(RETRY_PAUSE)


def run_pushers(
    base_url: str, batches: Batches, poller: Poller, lateness: float
) -> list[PusherResult]:
    """Push every batch with PUSHERS processes, the poller running meanwhile; their results."""
    context = multiprocessing.get_context("fork")  # the children share the bodies, no copy
    start = context.Event()
    results: Queue[PusherResult] = context.Queue()
    paired = list(zip(batches.bodies, batches.newest, strict=True))
    firsts = [newest for _, newest in paired[:PUSHERS]]
    pace = Pace(context.Array("d", firsts, lock=False), lateness / 2)
    pushers = [
        context.Process(
            target=push,
            args=(index, f"{base_url}/events", paired[index::PUSHERS], pace, start, results),
            name=f"pusher {index}",
        )
        for index in range(PUSHERS)
    ]
    for pusher in pushers:
        pusher.start()
    try:
        poller.start()  # after the forks: no thread is forked
        start.set()
        collected = collect(results, pushers)
        for pusher in pushers:
            pusher.join()
    finally:
        for pusher in pushers:
            if pusher.is_alive():
                pusher.terminate()
                pusher.join()
    failed = [result.error for result in collected if result.error]
    if failed:
        sys.exit(f"a pusher failed: {failed[0]}")
    return collected


def collect(results: Queue[PusherResult], pushers: Sequence[BaseProcess]) -> list[PusherResult]:
    """Each pusher's result, as they finish; exits if one dies without giving one."""
    collected: list[PusherResult] = []
    while len(collected) < len(pushers):
        try:
            collected.append(results.get(timeout=1))
        except queue.Empty:
            dead = [pusher.name for pusher in pushers if pusher.exitcode not in (None, 0)]
            if dead:
                sys.exit(f"{dead[0]} died")
    return collected


def metrics(base_url: str) -> dict[str, float]:
    """The service's metrics, by sample name (only the samples without labels)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def wait_for_evaluator(base_url: str, accepted: int, last_ack: float) -> float:
    """Seconds from the last 202 until the evaluator has evaluated every event accepted (NaN:
    not within AFTER_PUSHING). Returns AFTER_PUSHING after the last 202, not sooner: the
    evaluator may still publish alerts after it has counted the events."""
    caught_up = math.nan
    while (now := time.time()) < last_ack + AFTER_PUSHING:
        if math.isnan(caught_up) and metrics(base_url).get(EVALUATED, 0) >= accepted:
            caught_up = now - last_ack
        time.sleep(0.02)
    return caught_up


def logged_alerts(alerts_log: Path) -> set[AlertKey]:
    """Every alert the service listed at some point: pending since it started, firing since
    it fired, as GET /alerts keys them."""
    changes = msgspec.json.Decoder(LoggedChange).decode_lines(alerts_log.read_bytes())
    return {
        AlertKey(c.rule, c.service, c.server, c.started if c.fired is None else c.fired)
        for c in changes
        if c.state in ("pending", "firing")
    }


def acknowledged_in_batch_order(results: list[PusherResult], batches: int) -> list[float]:
    acknowledged = [0.0] * batches
    for result in results:
        acknowledged[result.pusher :: PUSHERS] = result.acknowledged
    return acknowledged


def close_times(
    newest: list[float], acknowledged: list[float], lateness: float
) -> dict[int, float]:
    """For each minute the file closes, the earliest 202 of a batch with an event that does."""
    earliest_from = acknowledged[:]  # the earliest 202 of this batch or any later one
    for index in range(len(earliest_from) - 2, -1, -1):
        earliest_from[index] = min(earliest_from[index], earliest_from[index + 1])
    closes = {}
    first = int(newest[0] // WINDOW_SECONDS) * WINDOW_SECONDS
    for start in range(first, int(newest[-1]) + 1, WINDOW_SECONDS):
        index = bisect.bisect_left(newest, start + WINDOW_SECONDS + lateness)
        if index < len(newest):
            closes[start] = earliest_from[index]
    return closes


def measure(batches: Batches, lateness: float, poll_every: float) -> Run:
    """One run against a new server."""
    with running_server(lateness) as service:
        poller = Poller(service.base_url, poll_every)
        try:
            results = run_pushers(service.base_url, batches, poller, lateness)
            accepted = sum(result.accepted for result in results)
            acknowledged = acknowledged_in_batch_order(results, len(batches.bodies))
            caught_up = wait_for_evaluator(service.base_url, accepted, max(acknowledged))
        finally:
            poller.stop()
        late = int(metrics(service.base_url).get("sereno_late_events_total", 0))
        logged = logged_alerts(service.alerts_log)
    closes = close_times(batches.newest, acknowledged, lateness)
    seen = poller.first_seen
    latencies = [first - closes[key.since] for key, first in seen.items() if key.since in closes]
    seconds = max(acknowledged) - min(result.first_sent for result in results)
    answered_in = [seconds for result in results for seconds in result.answered_in]
    return Run(
        events_per_second=accepted / seconds,
        seconds=seconds,
        requests=sum(result.requests for result in results),
        retries=sum(result.retries for result in results),
        post_p50=percentile(answered_in, 0.5),
        post_p99=percentile(answered_in, 0.99),
        late_events=late,
        caught_up=caught_up,
        alerts=len(latencies),
        early=sum(latency < 0 for latency in latencies),
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        worst=percentile(latencies, 1.0),
        unclosed=len(seen) - len(latencies),
        unseen=len(logged - seen.keys()),
        poll_failures=poller.failures,
    )


COLUMNS = (
    f"{'events/s':>9} {'push s':>6} {'requests':>8} {'503s':>5} {'POST p50':>8}"
    f" {'POST p99':>8} {'late':>5} {'eval +s':>7}"
    f" {'alerts':>6} {'early':>6} {'p50 s':>6} {'p99 s':>6} {'max s':>6}"
    f" {'unclosed':>8} {'unseen':>6}"
)


def row(label: str, run: Run) -> str:
    return (
        f"  {label:7} {run.events_per_second:9,.0f} {run.seconds:6.2f} {run.requests:8,}"
        f" {run.retries:5,} {1000 * run.post_p50:6.1f}ms {1000 * run.post_p99:6.1f}ms"
        f" {run.late_events:5,} {run.caught_up:7.2f} {run.alerts:6,}"
        f" {run.early:6,} {run.p50:6.3f} {run.p99:6.3f} {run.worst:6.3f}"
        f" {run.unclosed:8,} {run.unseen:6,}"
        + (f" ({run.poll_failures} polls failed)" if run.poll_failures else "")
    )


def median_run(runs: list[Run]) -> Run:
    """A run of the medians of each figure."""

    def median(values: list[float]) -> float:
        return statistics.median(values)

    return Run(
        events_per_second=median([run.events_per_second for run in runs]),
        seconds=median([run.seconds for run in runs]),
        requests=round(median([run.requests for run in runs])),
        retries=round(median([run.retries for run in runs])),
        post_p50=median([run.post_p50 for run in runs]),
        post_p99=median([run.post_p99 for run in runs]),
        late_events=round(median([run.late_events for run in runs])),
        caught_up=median([run.caught_up for run in runs]),
        alerts=round(median([run.alerts for run in runs])),
        early=round(median([run.early for run in runs])),
        p50=median([run.p50 for run in runs]),
        p99=median([run.p99 for run in runs]),
        worst=median([run.worst for run in runs]),
        unclosed=round(median([run.unclosed for run in runs])),
        unseen=round(median([run.unseen for run in runs])),
        poll_failures=sum(run.poll_failures for run in runs),
    )


def verdicts(run: Run) -> str:
    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    fast = verdict(run.events_per_second >= TARGET_EVENTS_PER_SECOND)
    prompt = verdict(run.p99 <= TARGET_P99_SECONDS)
    return (
        f"targets: >= {TARGET_EVENTS_PER_SECOND:,} events/s {fast},"
        f" alert latency p99 <= {TARGET_P99_SECONDS:g} s {prompt}"
    )


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that the server and the temporary directory go too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        epilog="Make files with benchmarks/generate.py.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="JSON Lines (or array) events")
    parser.add_argument("--runs", type=int, default=1, help="how many times (default 1)")
    parser.add_argument(
        "--allowed-lateness",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="the server's, and the close times' (default 30)",
    )
    parser.add_argument(
        "--poll-every",
        type=float,
        default=0.02,
        metavar="SECONDS",
        help="how often GET /alerts is polled (default 0.02)",
    )
    args = parser.parse_args()
    if args.runs < 1 or not args.poll_every > 0 or args.allowed_lateness < 0:
        parser.error("--runs and --poll-every must be positive, --allowed-lateness not negative")
    stop_on_sigterm()
    try:
        runs = measure_runs(args.file, args.runs, args.allowed_lateness, args.poll_every)
    except KeyboardInterrupt:
        sys.exit("interrupted")
    summary = median_run(runs) if len(runs) > 1 else runs[0]
    if len(runs) > 1:
        print(row("median", summary))
    print(verdicts(summary))


def measure_runs(path: Path, count: int, lateness: float, poll_every: float) -> list[Run]:
    """Read the file, then run `count` times, printing each run as it ends."""
    batches = make_batches(read_events(path))
    if not batches.events:
        sys.exit(f"{path}: no events")
    print(
        f"{' '.join(sereno_command())} serve, {os.cpu_count()} CPUs, {PUSHERS} pushers,"
        f" batches of {BATCH_EVENTS:,}, GET /alerts every {poll_every * 1000:g} ms"
    )
    size = path.stat().st_size / 1e6
    print(f"\n{path.name}: {batches.events:,} events, {size:,.0f} MB\n  {'run':7} {COLUMNS}")
    runs = []
    for number in range(1, count + 1):
        runs.append(measure(batches, lateness, poll_every))
        print(row(str(number), runs[-1]), flush=True)
    return runs


if __name__ == "__main__":
    main()
