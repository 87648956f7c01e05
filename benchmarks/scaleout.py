"""Scale-out on Kafka, end to end: `python benchmarks/scaleout.py FILE [--workers 1 2 3]`.

For each count of workers, in turn: starts librdkafka's mock cluster (`python -m
sereno.kafka.mockcluster`, 3 brokers, the events, alerts and state topics with
`--partitions` each), one ingest node (`sereno serve --kafka`) and that many `sereno worker
--no-delivery` (with a webhook configured, so that notices are planned and written to the
alerts topic, as in a deployment, but sent nowhere); waits until the workers share every
partition; then has `--pushers` processes POST FILE to the ingest node in batches of 1,000
events, in event-time order (each pusher takes every n-th batch over one keep-alive
connection; a 503 is waited out and the batch sent again), then one event a service three
minutes after the last, which closes the file's minutes.

It measures:

  ingest       events accepted / seconds from the first request sent to the last 202
  end to end   events / seconds from the first request sent until the workers have taken
               them all: until each events partition's latest state (on the state topic)
               covers every message of that partition
  lag          seconds from the last 202 until then

and, with `--failover`, once: three workers, half of FILE pushed, the worker owning most
partitions killed (SIGKILL); the seconds until the two others own all of them (their logs
say so), and until their state covers the whole file once the rest is pushed.

Everything shares this machine's cores: on 2 cores the figures show what the Kafka path
costs, not how it scales. The mock cluster keeps only about 5 MB of each partition: with a
large FILE, use more partitions (the default, 24, holds about 1M events of the default
generator). Make FILE with benchmarks/generate.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.synchronize import Event as StartSignal
from pathlib import Path

import httpx
import msgspec
from confluent_kafka import Consumer, TopicPartition
from ingest import free_port, make_batches, read_events
from run import sereno_command  # the `sereno` beside the Python that runs this

from sereno.events.schema import Event
from sereno.kafka.settings import (
    DEFAULT_ALERTS_TOPIC,
    DEFAULT_EVENTS_TOPIC,
    DEFAULT_GROUP,
    DEFAULT_STATE_TOPIC,
    KafkaSettings,
)
from sereno.kafka.worker import saved_states

DEADLINE = 600.0
CLOSING_DELAY = 180  # seconds of event time after the file's last event: closes its minutes


@dataclass(frozen=True)
class Measured:
    workers: int
    events: int
    ingest_seconds: float
    end_to_end_seconds: float

    @property
    def lag(self) -> float:
        return self.end_to_end_seconds - self.ingest_seconds


class Deployment:
    """A mock cluster, an ingest node and workers, each a process of its own."""

    def __init__(self, stack: ExitStack, partitions: int, folder: Path) -> None:
        self._stack, self._folder = stack, folder
        command = [sys.executable, "-m", "sereno.kafka.mockcluster"]
        for topic in (DEFAULT_EVENTS_TOPIC, DEFAULT_ALERTS_TOPIC, DEFAULT_STATE_TOPIC):
            command += ["--topic", f"{topic}:{partitions}"]
        self.cluster = self._start([*command, "--initial-rebalance-delay", "0"], stdin=True)
        assert self.cluster.stdout is not None
        self.bootstrap = self.cluster.stdout.readline().strip()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        listen = ["--listen", f"127.0.0.1:{port}"]
        self._start([*sereno_command(), "serve", *listen, "--kafka", self.bootstrap])
        self._wait_ready()
        self.partitions = partitions
        self.workers: list[Worker] = []

    def _start(self, command: list[str], stdin: bool = False) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=self._folder,
        )
        self._stack.callback(_ended, process)
        return process

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit("the ingest node did not start")

    def add_worker(self) -> Worker:
        name = f"w{len(self.workers)}"
        command = [*sereno_command(), "worker", "--kafka", self.bootstrap, "--no-delivery"]
        command += ["--webhook", "http://127.0.0.1:9/", "--alerts-log", os.devnull]
        process = subprocess.Popen(
            command, stderr=subprocess.PIPE, text=True, cwd=self._folder, stdout=subprocess.DEVNULL
        )
        self._stack.callback(_ended, process)
        worker = Worker(name, process)
        self.workers.append(worker)
        return worker

    def wait_owned(self, workers: Sequence[Worker]) -> float:
        """Seconds until `workers` own every partition between them."""
        started = time.monotonic()
        every = list(range(self.partitions))
        while sorted(p for worker in workers for p in worker.partitions()) != every:
            if time.monotonic() - started > DEADLINE:
                raise SystemExit("the workers were not given every partition in time")
            time.sleep(0.02)
        return time.monotonic() - started

    def wait_evaluated(self) -> None:
        """Until each events partition's latest state covers all of its messages."""
        settings = KafkaSettings(self.bootstrap)
        watcher = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "benchmark"})
        numbers = list(range(self.partitions))
        deadline = time.monotonic() + DEADLINE
        try:
            while True:
                ends = [
                    watcher.get_watermark_offsets(TopicPartition(DEFAULT_EVENTS_TOPIC, n), 10)[1]
                    for n in numbers
                ]
                states = saved_states(settings, DEFAULT_GROUP, numbers, print)
                covered = [states[n].snapshot.seq if n in states else 0 for n in numbers]
                if all(seen >= end for seen, end in zip(covered, ends, strict=True)):
                    return
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not take every event in time")
                time.sleep(0.05)
        finally:
            watcher.close()


class Worker:
    def __init__(self, name: str, process: subprocess.Popen[str]) -> None:
        self.name, self.process = name, process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def partitions(self) -> set[int]:
        owned: set[int] = set()
        for line in list(self.lines):
            if not line.startswith("sereno: partitions "):
                continue
            what, _, listed = line.removeprefix("sereno: partitions ").partition(": ")
            numbers = {int(n) for n in listed.split(", ")}
            owned = owned | numbers if what == "assigned" else owned - numbers
        return owned


def _ended(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def closing_events(events: list[Event]) -> list[Event]:
    """One event a service, `CLOSING_DELAY` seconds after the last event: it closes the
    file's minutes in every partition."""
    at = max(event.timestamp for event in events) + CLOSING_DELAY
    services = {event.service: event for event in events}
    return [
        Event(server=e.server, service=e.service, component="Closing", value=0.0,
              timestamp=at, active=e.active)
        for e in services.values()
    ]  # fmt: skip


def _push(
    url: str, bodies: list[bytes], start: StartSignal, done: multiprocessing.Queue[float]
) -> None:
    with httpx.Client(timeout=60) as client:
        start.wait()
        for body in bodies:
            while True:
                answer = client.post(
                    url, content=body, headers={"content-type": "application/x-ndjson"}
                )
                if answer.status_code == 202:
                    break
                time.sleep(0.05)
    done.put(time.monotonic())


def push(url: str, bodies: list[bytes], pushers: int) -> tuple[float, float]:
    """POST the bodies, `pushers` processes taking them in turn; (first sent, last 202)."""
    context = multiprocessing.get_context("fork")
    start, done = context.Event(), context.Queue()
    processes = [
        context.Process(target=_push, args=(f"{url}/events", bodies[n::pushers], start, done))
        for n in range(pushers)
    ]
    for process in processes:
        process.start()
    time.sleep(0.2)
    began = time.monotonic()
    start.set()
    finished = max(done.get(timeout=DEADLINE) for _ in processes)
    for process in processes:
        process.join()
    return began, finished


def measure(workers: int, bodies: list[bytes], events: int, args: argparse.Namespace) -> Measured:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sereno-kafka-") as folder:
        deployment = Deployment(stack, args.partitions, Path(folder))
        for _ in range(workers):
            deployment.add_worker()
        deployment.wait_owned(deployment.workers)
        began, last_taken = push(deployment.url, bodies, args.pushers)
        deployment.wait_evaluated()
        ended = time.monotonic()
    return Measured(workers, events, last_taken - began, ended - began)


def failover(bodies: list[bytes], args: argparse.Namespace) -> tuple[float, float]:
    """(seconds until the killed worker's partitions are owned again, seconds from the kill
    until every event is taken, the rest of the file pushed meanwhile)."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sereno-kafka-") as folder:
        deployment = Deployment(stack, args.partitions, Path(folder))
        for _ in range(3):
            deployment.add_worker()
        deployment.wait_owned(deployment.workers)
        half = len(bodies) // 2
        push(deployment.url, bodies[:half], args.pushers)
        victim = max(deployment.workers, key=lambda worker: len(worker.partitions()))
        victim.process.kill()
        killed = time.monotonic()
        survivors = [worker for worker in deployment.workers if worker is not victim]
        mover = threading.Thread(target=push, args=(deployment.url, bodies[half:], args.pushers))
        mover.start()
        moved = deployment.wait_owned(survivors)
        mover.join()
        deployment.wait_evaluated()
        return moved, time.monotonic() - killed


def bodies_of(path: Path) -> tuple[list[bytes], int]:
    events = read_events(path)
    batches = make_batches(events)
    closing = msgspec.json.Encoder().encode_lines(closing_events(events))
    return [*batches.bodies, closing], len(events)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--partitions", type=int, default=24)
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--failover", action="store_true", help="measure a takeover too")
    args = parser.parse_args(argv)
    bodies, events = bodies_of(args.file)
    print(f"{args.file.name}: {events:,} events, {args.partitions} partitions, "
          f"{args.pushers} pushers, {os.cpu_count()} CPUs")  # fmt: skip
    print("  workers   ingest events/s   end-to-end events/s   lag after the last 202")
    for workers in args.workers:
        run = measure(workers, bodies, events, args)
        print(
            f"  {run.workers:7d}   {run.events / run.ingest_seconds:15,.0f}"
            f"   {run.events / run.end_to_end_seconds:19,.0f}   {run.lag:8.1f} s",
            flush=True,
        )
    if args.failover:
        moved, caught_up = failover(bodies, args)
        print(f"  failover: the killed worker's partitions owned again in {moved:.1f} s; "
              f"every event taken {caught_up:.1f} s after the kill")  # fmt: skip


if __name__ == "__main__":
    main()
