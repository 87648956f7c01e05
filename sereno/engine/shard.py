"""Shares of the fleet: the services each of several jobs evaluates.

Every rule finds an alert from one service's events alone (a server's samples, a service's
majority, a server's silence), and the lifecycle follows each alert on its own; so jobs that
each evaluate the part of every window that holds their services' events, in the order they
came, find between them exactly the alerts one would. The exception is inhibition between
services (`equal` without `service`), which `shares_by_service` tells.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from itertools import compress, repeat
from operator import attrgetter, eq

from sereno.engine.windows import Window
from sereno.rules.rulefmt import RuleSet

BUCKETS = 1024  # each service falls in one, by CRC-32 (the same in every process, unlike `hash`)

_service = attrgetter("service")


def shares_by_service(ruleset: RuleSet) -> bool:
    """Whether the rules can be evaluated a share of the services at a time."""
    return all(not spec.inhibited_by or "service" in spec.equal for spec in ruleset.rules)


class Shares:
    """How `count` jobs share the services. Job 0 also reads and windows the input for all
    of them, so it takes a small share (a third of an even one); the others take equal
    shares of the rest."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"no share for {count} jobs")
        self.count = count
        first = BUCKETS // (3 * count) if count > 1 else BUCKETS
        rest = BUCKETS - first
        # job k takes the buckets from bounds[k - 1] (0 for job 0) up to bounds[k]
        self._bounds = [first + rest * k // (count - 1) for k in range(count - 1)] + [BUCKETS]
        self._job_of: dict[str, int] = {}

    def job_of(self, service: str) -> int:
        job = self._job_of.get(service)
        if job is None:
            bucket = zlib.crc32(service.encode("utf-8", "surrogatepass")) % BUCKETS
            job = self._job_of[service] = bisect_right(self._bounds, bucket)
        return job

    def split(self, window: Window) -> list[Window]:
        """The window's events of each job's services, in the order they came, each part
        knowing the places its events had in the whole window."""
        try:
            jobs = list(map(self._job_of.__getitem__, map(_service, window.events)))
        except KeyError:  # a service not seen before
            jobs = list(map(self.job_of, map(_service, window.events)))
        parts = []
        for job in range(self.count):
            mine = list(map(eq, jobs, repeat(job)))
            part = Window(window.start)
            part.events = list(compress(window.events, mine))
            part.places = list(compress(range(len(jobs)), mine))
            parts.append(part)
        return parts
