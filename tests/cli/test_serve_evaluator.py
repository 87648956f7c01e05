"""`sereno serve` evaluates in a process of its own: what happens when it goes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Server, disk_in_minute


def evaluator_of(server: Server) -> int:
    """The process id of the server's evaluator: its only child."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    (pid,) = children.read_text().split()
    return int(pid)


def test_the_evaluator_is_a_process_of_its_own(start_server: Callable[..., Server]) -> None:
    server = start_server()
    evaluator = evaluator_of(server)
    assert evaluator != server.process.pid
    server.post_lines(disk_in_minute("a", 0.95, 0))
    alerts = server.alerts_until(lambda alerts: len(alerts) == 1)
    assert [alert["server"] for alert in alerts] == ["a"]
    assert "sereno: stopped" in server.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{evaluator}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{evaluator}").exists()


def test_a_killed_evaluator_stops_the_server_with_one_line(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    os.kill(evaluator_of(server), signal.SIGKILL)
    assert server.process.wait(timeout=20) == 1
    assert server.process.stderr is not None
    said = server.process.stderr.read().decode().splitlines()
    stopped = "the evaluator stopped unexpectedly (killed by SIGKILL)"
    assert said[-1] == f"sereno: stopped: evaluation failed: {stopped}"
