"""Diagnostics on standard error, a whole line at a time, from any thread."""

from __future__ import annotations

import sys
import threading

# the delivery workers, the evaluator and the HTTP side all report: one line at a time
_STDERR_LOCK = threading.Lock()


def to_stderr(message: str) -> None:
    """One diagnostic line, flushed at once so that it keeps its place among the others.

    Written whole, in one write of the message and its newline under a lock: `print` writes
    them apart, and two threads' lines would end up on one line."""
    line = message + "\n"
    with _STDERR_LOCK:
        sys.stderr.write(line)
        sys.stderr.flush()
