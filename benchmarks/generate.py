"""Write a realistic fleet's events, for benchmarks: `python benchmarks/generate.py --help`.

Every server of every service reports every component once a minute, at a jittered second
that is its own for the minute. A share of the servers is passive. Values are drawn so that
about `--match-share` of all events match one of the default rules: disks above 90% on some
servers, and whole services whose load goes above 4.0 for a minute (which is what makes the
majority rule fire).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from typing import IO

import msgspec

START = 1_700_000_040  # a whole minute
DISK = "DiskUsedPercentage"
LOAD = "Load5mAvg"
OTHER_COMPONENTS = [
    "CpuUser",
    "CpuSystem",
    "CpuIowait",
    "MemUsed",
    "MemCached",
    "SwapUsed",
    "NetIn",
    "NetOut",
    "NetErrors",
    "DiskReadOps",
    "DiskWriteOps",
    "InodesUsed",
    "OpenFiles",
    "Processes",
    "Threads",
    "TcpEstablished",
    "TcpTimeWait",
    "GcPause",
    "HeapUsed",
    "QueueDepth",
    "RequestRate",
    "ErrorRate",
    "Latency50",
    "Latency99",
    "Uptime",
    "Temperature",
    "FanSpeed",
    "Load1mAvg",
    "Load15mAvg",
    "ContextSwitches",
    "Interrupts",
    "PageFaults",
    "DnsLatency",
    "NtpOffset",
    "CertDays",
    "BackupAge",
    "ReplicationLag",
    "CacheHitRatio",
    "ConnectionPool",
    "WorkerBusy",
    "ThreadPool",
    "SocketBacklog",
    "RetransmitRate",
    "ZombieProcesses",
    "EntropyAvail",
    "BatteryHealth",
    "PowerDraw",
    "RaidDegraded",
]


class Fleet(msgspec.Struct, frozen=True):
    services: int
    servers: int
    components: int
    minutes: int
    inactive_share: float
    match_share: float
    seed: int

    @property
    def events(self) -> int:
        return self.servers * self.components * self.minutes


def parse(argv: list[str]) -> tuple[Fleet, str, str]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("output", help="file to write; - for standard output")
    parser.add_argument("--events", type=int, help="about this many events (sets --minutes)")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--servers", type=int, default=2000, help="servers in all")
    parser.add_argument("--components", type=int, default=50, help="2 to 50 per server")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--inactive-share", type=float, default=0.1)
    parser.add_argument(
        "--match-share", type=float, default=0.03, help="share of events matching a rule"
    )
    parser.add_argument("--format", choices=("jsonl", "array"), default="jsonl")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 2 <= args.components <= 2 + len(OTHER_COMPONENTS):
        parser.error(f"--components must be 2 to {2 + len(OTHER_COMPONENTS)}")
    minutes = args.minutes
    if args.events:
        minutes = max(1, round(args.events / (args.servers * args.components)))
    fleet = Fleet(
        args.services,
        args.servers,
        args.components,
        minutes,
        args.inactive_share,
        args.match_share,
        args.seed,
    )
    return fleet, args.output, args.format


def events(fleet: Fleet) -> Iterator[dict[str, object]]:
    rng = random.Random(fleet.seed)
    components = [DISK, LOAD, *OTHER_COMPONENTS[: fleet.components - 2]]
    servers = [
        (f"srv{index:05d}", f"Service{index % fleet.services:03d}")
        for index in range(fleet.servers)
    ]
    passive = {name for name, _ in servers if rng.random() < fleet.inactive_share}
    # Half the matching events are full disks, half overloaded servers; an overloaded
    # service has most of its servers above 4.0.
    rule_share = 2 / fleet.components
    disk_full = min(1.0, fleet.match_share / rule_share)
    overloaded = min(1.0, fleet.match_share / rule_share / 0.8)
    for minute in range(fleet.minutes):
        start = START + 60 * minute
        hot = {f"Service{s:03d}" for s in range(fleet.services) if rng.random() < overloaded}
        for server, service in servers:
            timestamp = start + rng.randrange(60)
            load_high = rng.random() < (0.8 if service in hot else 0.05)
            for component in components:
                if component == DISK:
                    value = round(
                        rng.uniform(0.905, 0.99)
                        if rng.random() < disk_full
                        else rng.uniform(0.2, 0.9),
                        3,
                    )
                elif component == LOAD:
                    value = round(
                        rng.uniform(4.05, 12.0) if load_high else rng.uniform(0.1, 4.0), 2
                    )
                else:
                    value = round(rng.uniform(0, 100), 2)
                yield {
                    "server": server,
                    "service": service,
                    "component": component,
                    "value": value,
                    "timestamp": timestamp,
                    "active": server not in passive,
                }


def matches_a_rule(event: dict[str, object]) -> bool:
    """Whether the event matches a default rule's condition (a full disk, or a load above
    4.0, of an active server)."""
    value, component = event["value"], event["component"]
    assert isinstance(value, float)
    limit = {DISK: 0.9, LOAD: 4.0}.get(str(component))
    return limit is not None and value > limit and bool(event["active"])


def write(fleet: Fleet, stream: IO[bytes], form: str) -> int:
    """Write the events; how many match a default rule's condition."""
    encoder = msgspec.json.Encoder()
    separator, opening, closing = (b"\n", b"", b"\n") if form == "jsonl" else (b",\n", b"[", b"]\n")
    buffer = bytearray(opening)
    first = True
    matching = 0
    for event in events(fleet):
        matching += matches_a_rule(event)
        if not first:
            buffer += separator
        first = False
        encoder.encode_into(event, buffer, -1)
        if len(buffer) > 1 << 20:
            stream.write(buffer)
            buffer.clear()
    buffer += closing
    stream.write(buffer)
    return matching


def main(argv: list[str] | None = None) -> None:
    fleet, output, form = parse(sys.argv[1:] if argv is None else argv)
    if output == "-":
        matching = write(fleet, sys.stdout.buffer, form)
    else:
        with open(output, "wb") as stream:
            matching = write(fleet, stream, form)
    print(
        f"{output}: {fleet.events} events, {fleet.servers} servers, {fleet.minutes} minutes; "
        f"{matching / fleet.events:.1%} of the events match a default rule's condition",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
