"""Writes page_fleet.jsonl, the events the browser tests of the web page (`tests/page/`) feed
the service with, under the packaged rules (a disk over 90%, MEDIUM; a majority of a service's
load averages over 4.0, HIGH), over 10 minutes:

    python tests/data/scenarios/page_fleet.py > tests/data/scenarios/page_fleet.jsonl

Deterministic and standard library only, so that the file can be checked against this script.
Minute 0 starts at 1476057600; the tests move every timestamp by the same amount so that the
file ends near their own clock's time (the service refuses events far ahead of its clock). They
push minutes 0-5 first, then minutes 6-9 when they want event time to go on. Each server sends
each of its components once a minute, at a fixed second of the minute.

Minute by minute:
  inbox01-inbox05 (InboxService) Load5mAvg: inbox01-inbox03 at 5.0 from minute 1, the others
      at 1.0: 3 of 5 active servers, a majority (HIGH, fires in minute 1, goes on firing).
  inbox01-inbox05 DiskUsedPercentage: 0.50, but inbox05 at 0.95 in minutes 1-2 (MEDIUM: fires
      in minute 1, resolved in minute 3: an episode of the history).
  pdf01, pdf02 (ReportPDFGenerator) DiskUsedPercentage: pdf01 at 0.95 from minute 1 (MEDIUM,
      goes on firing); pdf02 at 0.60 until minute 5, then nothing: it goes quiet.
  fb01, fb02 (FacebookRealtime) DiskUsedPercentage: fb01 at 0.96 from minute 1 (MEDIUM, goes
      on firing); fb02, passive (active false), at 0.97: no alert, its disk is not counted.
  Every server but the inbox ones sends Load5mAvg at 1.0.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

T0 = 1476057600
MINUTES = 10
FIRST_PUSHED = 6  # minutes 0-5 are pushed first, 6-9 later

# the second of its minute at which each component is sent
SECOND = {"DiskUsedPercentage": 10, "Load5mAvg": 20}
SERVICES = {
    "InboxService": ("inbox01", "inbox02", "inbox03", "inbox04", "inbox05"),
    "ReportPDFGenerator": ("pdf01", "pdf02"),
    "FacebookRealtime": ("fb01", "fb02"),
}
PASSIVE = ("fb02",)
QUIET_FROM = {"pdf02": FIRST_PUSHED}  # the minute from which a server sends nothing


def disk(server: str, minute: int) -> float:
    if minute == 0:
        return 0.97 if server in PASSIVE else 0.50
    return {
        "inbox05": 0.95 if minute <= 2 else 0.50,
        "pdf01": 0.95,
        "pdf02": 0.60,
        "fb01": 0.96,
        "fb02": 0.97,
    }.get(server, 0.50)


def load(server: str, minute: int) -> float:
    overloaded = server in ("inbox01", "inbox02", "inbox03") and minute >= 1
    return 5.0 if overloaded else 1.0


def samples(minute: int) -> Iterator[tuple[str, str, str, float]]:
    """(server, service, component, value) of each sample of the minute."""
    for service, servers in SERVICES.items():
        for server in servers:
            if minute >= QUIET_FROM.get(server, MINUTES):
                continue
            yield server, service, "DiskUsedPercentage", disk(server, minute)
            yield server, service, "Load5mAvg", load(server, minute)


def events() -> Iterator[dict[str, object]]:
    for minute in range(MINUTES):
        records = [
            {
                "server": server,
                "service": service,
                "component": component,
                "value": value,
                "timestamp": T0 + 60 * minute + SECOND[component],
                "active": server not in PASSIVE,
            }
            for server, service, component, value in samples(minute)
        ]
        yield from sorted(records, key=lambda record: (record["timestamp"], record["server"]))


def main() -> None:
    for record in events():
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
