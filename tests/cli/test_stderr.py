"""Diagnostics on standard error stay one to a line when threads report at once."""

from __future__ import annotations

import subprocess
import sys

THREADS, LINES = 8, 2000
# each thread reports lines of its own letter, long enough that a write is worth splitting
WRITERS = f"""
import sys, threading
from sereno.stderr import to_stderr

sys.setswitchinterval(1e-6)  # hand the interpreter over between threads as often as it can
start = threading.Barrier({THREADS})

def report(letter):
    start.wait()
    for number in range({LINES}):
        to_stderr(f"sereno: {{letter * 60}} {{number}}")

threads = [threading.Thread(target=report, args=(chr(65 + n),)) for n in range({THREADS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_lines_written_by_threads_at_once_stay_whole() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WRITERS], capture_output=True, timeout=120, check=True
    )
    lines = result.stderr.decode().splitlines()
    expected = {
        f"sereno: {chr(65 + thread) * 60} {number}"
        for thread in range(THREADS)
        for number in range(LINES)
    }
    broken = [line for line in lines if line not in expected]
    assert broken == []
    assert len(lines) == len(expected)
