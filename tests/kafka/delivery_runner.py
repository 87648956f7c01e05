"""A delivery stage in a process of its own, for a test to kill -9:
`python delivery_runner.py BOOTSTRAP GROUP DB URL`. Prints `started` once running, then runs
until killed (or until its standard input closes, when it stops gracefully)."""

from __future__ import annotations

import sys

from sereno.kafka.deliverystage import DeliveryStage
from sereno.kafka.settings import KafkaSettings
from sereno.notify.config import NotifyConfig, ReceiverSpec, Timing
from sereno.rules.rulefmt import load_default_rules
from sereno.state.store import create

# a dead member's partitions go to another one within seconds, not the default 45
CLIENT = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "max.poll.interval.ms": "10000",
}
FAST = Timing(timeout=0.5, retry_backoff=0.02, retry_backoff_max=0.1)


def stage(bootstrap: str, group: str, db: str, url: str) -> DeliveryStage:
    create(db)
    config = NotifyConfig("test", (ReceiverSpec("hook", "webhook", url, timing=FAST),))
    settings = KafkaSettings(bootstrap, CLIENT)
    return DeliveryStage(settings, group, db, config, load_default_rules())


def main() -> None:
    running = stage(*sys.argv[1:5])
    running.start()
    print("started", flush=True)
    sys.stdin.read()
    running.stop()


if __name__ == "__main__":
    main()
