"""Writes controls_fleet.jsonl, the events read by `tests/test_controls_end_to_end.py`: a fleet
that makes every control of `examples/controls.yaml` act, minute by minute, over 26 minutes.

    python tests/data/scenarios/controls_fleet.py > tests/data/scenarios/controls_fleet.jsonl

Deterministic and standard library only, so that the file can be checked against this script.
Each server sends each of its components once a minute, at a fixed second of the minute (the
same for every minute), so that every sample falls in the minute it is written for.

Minute by minute (minute 0 starts at 1476057600):
  file01 (Files) DiskUsedPercentage: 0.70 until minute 1; above 85% from minute 2 (WARNING
      after 2m: fires in minute 3); above 95% in minutes 5-6 (CRITICAL); 0.90 in minute 7
      (back to WARNING); 0.83 and 0.82 in minutes 8-9 (between 80% and 85%: held by
      recover_when); 0.78 from minute 10 (below 80%: resolved).
  file02 (Files) DiskUsedPercentage: above 85% in minutes 0-2 (fires in minute 1), then
      nothing in minutes 3-13 ("no data" once minutes 3-12 went without); 0.92 in minutes
      14-24 (data back); 0.50 in minute 25 (resolved).
  app01-app04 (Shop) Load5mAvg: app01 and app02 above 4.0 in minutes 4-6, 2 of 4 active
      servers: a quorum of ">= 50%" (fires in minute 4); all at 1.0 otherwise, and the alert
      is kept firing 3 minutes after minute 6 ends (resolved in minute 10).
  app01-app04 (Shop) ResponseTimeP99: app03 at 3.0s in minutes 5-12 (slow, inhibited by the
      overload until it resolves in minute 10), 0.4s otherwise; the others always 0.4s.
  api01 (Api) ErrorRate: above 5% in minutes 2, 4 and 6 and from minute 8 on, 1% otherwise:
      a change every minute in minutes 2-8 (flapping from minute 6), then steady (stopped
      flapping in minute 15).
  batch01, batch02 (Batch) QueueDepth: a component no rule reads, in every minute, so that
      event time goes on while the others are silent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

T0 = 1476057600
MINUTES = 26

# the second of its minute at which each component is sent
SECOND = {
    "DiskUsedPercentage": 10,
    "Load5mAvg": 20,
    "ResponseTimeP99": 25,
    "ErrorRate": 30,
    "QueueDepth": 50,
}


def file01_disk(minute: int) -> float:
    if minute < 2:
        return 0.70
    if minute < 5:
        return 0.88 if minute < 4 else 0.90
    if minute < 7:
        return 0.97
    return {7: 0.90, 8: 0.83, 9: 0.82}.get(minute, 0.78)


def file02_disk(minute: int) -> float | None:
    """None: file02 sends nothing in that minute."""
    if minute < 3:
        return 0.91 if minute == 2 else 0.90
    if minute < 14:
        return None
    return 0.92 if minute < MINUTES - 1 else 0.50


def load(server: str, minute: int) -> float:
    overloaded = server in ("app01", "app02") and 4 <= minute <= 6
    return 5.0 if overloaded else 1.0


def response_time(server: str, minute: int) -> float:
    return 3.0 if server == "app03" and 5 <= minute <= 12 else 0.4


def error_rate(minute: int) -> float:
    high = minute in (2, 4, 6) or minute >= 8
    return 0.10 if high else 0.01


def samples(minute: int) -> Iterator[tuple[str, str, str, float]]:
    """(server, service, component, value) of each sample of the minute."""
    yield "file01", "Files", "DiskUsedPercentage", file01_disk(minute)
    disk = file02_disk(minute)
    if disk is not None:
        yield "file02", "Files", "DiskUsedPercentage", disk
    for server in ("app01", "app02", "app03", "app04"):
        yield server, "Shop", "Load5mAvg", load(server, minute)
        yield server, "Shop", "ResponseTimeP99", response_time(server, minute)
    yield "api01", "Api", "ErrorRate", error_rate(minute)
    for server in ("batch01", "batch02"):
        yield server, "Batch", "QueueDepth", 12.0


def events() -> Iterator[dict[str, object]]:
    for minute in range(MINUTES):
        records = [
            {
                "server": server,
                "service": service,
                "component": component,
                "value": value,
                "timestamp": T0 + 60 * minute + SECOND[component],
                "active": True,
            }
            for server, service, component, value in samples(minute)
        ]
        yield from sorted(records, key=lambda record: (record["timestamp"], record["server"]))


def main() -> None:
    for record in events():
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
