"""Real `sereno worker` processes for the scale-out tests, and what they wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sereno.kafka.messages import ALERT_MESSAGE, AlertMessage
from sereno.kafka.settings import DEFAULT_ALERTS_TOPIC, DEFAULT_GROUP

from conftest import sereno_executable
from kafka_cluster import KafkaCluster

DEADLINE = 60.0


class Worker:
    """A `sereno worker` process, its standard error read as it comes."""

    def __init__(self, name: str, cluster: KafkaCluster, folder: Path, *args: str) -> None:
        self.name = name
        self.alerts_log = folder / f"{name}.alerts.log"
        command = [sereno_executable(), "worker", "--kafka", cluster.bootstrap]
        self.process = subprocess.Popen(
            [*command, "--alerts-log", str(self.alerts_log), "--db", f"{name}.db", *args],
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def partitions(self) -> set[int]:
        """The partitions it owns, as its log says."""
        owned: set[int] = set()
        for line in self.lines:
            what, _, listed = line.removeprefix("sereno: partitions ").partition(": ")
            numbers = (
                {int(n) for n in listed.split(", ")}
                if line.startswith("sereno: partitions")
                else set()
            )
            owned = owned | numbers if what == "assigned" else owned - numbers
        return owned

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        """Stop it as a service manager would (SIGTERM); its exit status (-9 if killed)."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop on SIGTERM in {DEADLINE:g}s") from None
        finally:
            self._reader.join(5)


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> float:
    """Wait until `check()`; how long it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > deadline:
            raise AssertionError(f"not in {deadline:g}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def delivered_everything(cluster: KafkaCluster) -> bool:
    """Whether the delivery stages' group has committed every record of the alerts topic."""
    ends: dict[int, int] = {}
    for message in cluster.messages(DEFAULT_ALERTS_TOPIC):
        ends[message.partition() or 0] = (message.offset() or 0) + 1
    committed = cluster.committed(f"{DEFAULT_GROUP}-delivery", DEFAULT_ALERTS_TOPIC)
    return all(committed.get(partition, -1) >= end for partition, end in ends.items())


def alert_messages(cluster: KafkaCluster) -> list[AlertMessage]:
    return [ALERT_MESSAGE.decode(m.value() or b"") for m in cluster.messages(DEFAULT_ALERTS_TOPIC)]


def notices_told(messages: list[AlertMessage], before: int) -> dict[str, dict[str, object]]:
    """The notices the alerts topic holds of the minutes before `before`, reminders aside,
    by receiver and idempotency key, each as `sereno FILE --notices --format json` writes it."""
    told = {}
    for message in messages:
        for item in message.notices:
            notice = item.notice
            if notice.reason != "repeat" and notice.at < before:
                told[item.key] = {
                    "at": notice.at, "change": notice.reason, "rule": notice.rule,
                    "severity": notice.severity, "service": notice.service,
                    "server": notice.server or None, "value": notice.value,
                    "started": notice.started,
                }  # fmt: skip
    return told


def batch_notices(
    run: Callable[..., subprocess.CompletedProcess[str]], path: Path, before: int
) -> list[dict[str, object]]:
    result = run(path, "--notices", "--format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    keys = ("at", "change", "rule", "severity", "service", "server", "value", "started")
    return [{key: record[key] for key in keys} for record in records if record["at"] < before]
