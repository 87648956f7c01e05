"""How numbers and counts are written for people, the same everywhere."""

from __future__ import annotations

from sereno.events.schema import Number


def counted(count: int, noun: str) -> str:
    """`1 alert`, `2 alerts`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_number(number: Number) -> str:
    """A number as the agent sent it: 95 stays 95, 0.93 stays 0.93."""
    return repr(number)
