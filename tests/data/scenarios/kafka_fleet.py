"""Writes kafka_fleet.jsonl, the events the scale-out tests (`tests/kafka/`) push through
Kafka and compare with `sereno FILE`, under the packaged rules (a disk over 90%, MEDIUM; a
majority of a service's load averages over 4.0, HIGH):

    python tests/data/scenarios/kafka_fleet.py > tests/data/scenarios/kafka_fleet.jsonl

Deterministic and standard library only (`random.Random(seed).random()`, the same in every
Python 3), so that the file can be checked against this script. Minute 0 starts at 1476057600.

12 services of 4 servers, so that every partition of the tests' topics (6) has some; each
server sends DiskUsedPercentage and Load5mAvg once a minute, at a second of its own, in
minutes 0-11. The last server of every third service is passive. A disk is at 0.95 in about
one minute in eight (an alert for an active server); a service has a load storm in about one
minute in four, in which each server's load is 5.0 with a chance of 0.7 (a majority alert
when most of its active servers have it). Minute 14 is quiet and healthy: each server sends
its disk at 0.5, which closes minutes 0-11 in a running service, as more events would.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator

T0 = 1476057600
MINUTES = 12
CLOSING_MINUTE = 14
SERVICES = [f"svc{number:02d}" for number in range(12)]
SERVERS = 4


def events(seed: int = 7) -> Iterator[dict[str, object]]:
    chance = random.Random(seed).random
    fleet = [
        (service, f"{service}-{index}", not (number % 3 == 0 and index == SERVERS - 1))
        for number, service in enumerate(SERVICES)
        for index in range(SERVERS)
    ]
    for minute in range(MINUTES):
        storms = {service for service in SERVICES if chance() < 0.25}
        minute_events = []
        for second, (service, server, active) in enumerate(fleet):
            disk = 0.95 if chance() < 0.125 else round(0.5 + chance() * 0.35, 2)
            load = 5.0 if service in storms and chance() < 0.7 else round(1 + chance() * 2, 1)
            at = T0 + 60 * minute + second
            for component, value in (("DiskUsedPercentage", disk), ("Load5mAvg", load)):
                minute_events.append(
                    {"timestamp": at, "server": server, "service": service,
                     "component": component, "value": value, "active": active}
                )  # fmt: skip
        yield from minute_events
    for second, (service, server, active) in enumerate(fleet):
        yield {
            "timestamp": T0 + 60 * CLOSING_MINUTE + second,
            "server": server,
            "service": service,
            "component": "DiskUsedPercentage",
            "value": 0.5,
            "active": active,
        }


if __name__ == "__main__":
    for event in events():
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
