"""How numbers, counts and times are written, the same everywhere."""

from __future__ import annotations

import signal
from datetime import datetime, timezone

from sereno.events.schema import Number


def how_it_ended(exitcode: int | None) -> str:
    """A process's end as its exit code says: `exit status 3`, `killed by SIGKILL`."""
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def counted(count: int, noun: str) -> str:
    """`1 alert`, `2 alerts`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_number(number: Number) -> str:
    """A number as the agent sent it: 95 stays 95, 0.93 stays 0.93."""
    return repr(number)


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")
