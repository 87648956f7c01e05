"""What `sereno serve` is told at its start: the state file, the body limit, the tokens and
the clock skew allowed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sereno.events.body import DEFAULT_MAX_BODY
from sereno.events.times import DEFAULT_MAX_CLOCK_SKEW


@dataclass(frozen=True)
class ServerConfig:
    db: Path  # the state file
    max_body: int = DEFAULT_MAX_BODY
    tokens: frozenset[str] = frozenset()  # bearer tokens; none means no authentication
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW  # how far ahead of the clock events may be
