"""Diagnostics of a run on standard error: what went wrong with the input, and progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from sereno.errors import SerenoError
from sereno.events.reader import EventBatch, EventReader, RecordError
from sereno.events.schema import Event
from sereno.events.times import ahead_reason
from sereno.rules.conditions import ConditionError
from sereno.rules.rulefmt import RuleSpec
from sereno.stderr import to_stderr


class StrictStop(SerenoError):
    """`--strict`: the first bad record stops the run."""


MAX_REPORTED = 100
PROGRESS_MIN_BYTES = 8 << 20


@dataclass
class Diagnostics:
    """Counts and reports what went wrong with the input, keeping stderr readable.

    Bad and late records are reported as they come (the first hundred of them); condition
    errors are summed up per rule at the end.
    """

    strict: bool
    rejected: int = 0
    late: int = 0
    reported: int = 0
    condition_errors: dict[str, tuple[int, str]] = field(default_factory=dict)

    def _report(self, message: str) -> None:
        self.reported += 1
        if self.reported <= MAX_REPORTED:
            to_stderr(message)
        elif self.reported == MAX_REPORTED + 1:
            to_stderr(f"sereno: more than {MAX_REPORTED} problems; the rest are only counted")

    def record(self, error: RecordError) -> None:
        self.rejected += 1
        if self.strict:
            raise StrictStop(f"{error} (stopped: --strict)")
        self._report(f"{error}; record skipped")

    def late_event(self, batch: EventBatch, index: int) -> None:
        self.late += 1
        location, event = batch.location(index), batch.events[index]
        if self.strict:
            raise StrictStop(f"{location}: late event (stopped: --strict)")
        self._report(
            f"{location}: late event: timestamp {event.timestamp} belongs to a minute that was "
            "already evaluated; record skipped"
        )

    def ahead_event(self, batch: EventBatch, index: int, fleet_time: float) -> None:
        self.rejected += 1
        location, event = batch.location(index), batch.events[index]
        reason = ahead_reason(event.timestamp, fleet_time, "the rest of the fleet")
        if self.strict:
            raise StrictStop(f"{location}: field 'timestamp': {reason} (stopped: --strict)")
        self._report(f"{location}: field 'timestamp': {reason}; record skipped")

    def condition(self, spec: RuleSpec, event: Event, error: ConditionError) -> None:
        count, first = self.condition_errors.get(spec.name, (0, ""))
        if not first:
            first = f"server {event.server}, component {event.component}: {error}"
        self.condition_errors[spec.name] = (count + 1, first)

    def report_conditions(self) -> None:
        for rule, (count, first) in self.condition_errors.items():
            to_stderr(
                f"sereno: rule {rule!r}: the condition could not be evaluated for {count} "
                f"event(s), which did not match (first: {first})"
            )

    @property
    def any(self) -> bool:
        return bool(self.rejected or self.late or self.condition_errors)

    def warn(self, message: str) -> None:
        to_stderr(f"sereno: {message}")


def with_progress(
    batches: Iterator[EventBatch], reader: EventReader, size: int
) -> Iterator[EventBatch]:
    """Show a progress bar on stderr while `batches` are read (stderr a terminal, big file)."""
    # imported here: rich's console takes longer to import than a small file takes to read
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(reader.name, total=size)
        for batch in batches:
            progress.update(task, completed=reader.bytes_read)
            yield batch


def progress_size(stream: IO[bytes]) -> int | None:
    """The size to show progress against: only for a big file, with stderr on a terminal
    and the alerts going elsewhere (on the same terminal they show the progress themselves)."""
    if not sys.stderr.isatty() or sys.stdout.isatty():
        return None
    try:
        size = os.fstat(stream.fileno()).st_size
    except (OSError, ValueError):
        return None
    return size if size >= PROGRESS_MIN_BYTES else None
