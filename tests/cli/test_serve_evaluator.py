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
    assert not running(evaluator)  # the server waited for it


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


def test_the_evaluator_stops_when_the_server_is_killed(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    evaluator = evaluator_of(server)
    server.post_lines(disk_in_minute("a", 0.95, 0))
    server.process.kill()
    server.process.wait(timeout=20)
    deadline = time.monotonic() + 20
    while running(evaluator):
        assert time.monotonic() < deadline, "the evaluator outlived the server"
        time.sleep(0.05)
    assert server.process.stderr is not None
    assert "Traceback" not in server.process.stderr.read().decode()


def running(pid: int) -> bool:
    """Whether the process runs (a zombie, waiting to be reaped, has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
