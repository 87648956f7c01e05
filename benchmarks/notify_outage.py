"""A receiver that is down for minutes: does it get every notification, in order, once back?

Starts `sereno serve --webhook URL` and a webhook receiver on 127.0.0.1, takes the receiver
down, and pushes events (event time running `--speed` times faster than the clock) whose disk
samples make alerts fire and resolve over and over. After `--down` minutes the receiver comes
back, answering slowly; Sereno is killed with SIGKILL while it delivers, and started again.
Then it reports what the receiver got: notifications, duplicates (the same idempotency key
twice), order, and how long delivery took once the receiver was back.

    python benchmarks/notify_outage.py --down 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from ingest import free_port, wait_until_ready
from run import sereno_command  # the `sereno` beside the Python that runs this

SERVERS = 40
MINUTE = 60


@dataclass
class Received:
    keys: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0


def receiver(port: int, received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(received.delay)
            with received.lock:
                received.keys.append(self.headers["Idempotency-Key"])
                received.bodies.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(db: Path, port: int, hook: str) -> subprocess.Popen[bytes]:
    errors = db.with_suffix(".err")
    command = [*sereno_command(), "serve", "--listen", f"127.0.0.1:{port}", "--db", str(db)]
    process = subprocess.Popen(
        [*command, "--webhook", hook, "--alerts-log", str(db.with_suffix(".log"))],
        stderr=open(errors, "ab"),  # noqa: SIM115
    )
    wait_until_ready(process, f"http://127.0.0.1:{port}", errors)
    return process


def minute_of_events(start: int) -> list[dict[str, Any]]:
    """Server i's disk is hot in the minutes where (minute // (i % 5 + 1)) is odd: alerts
    that fire and resolve with periods of one to five minutes."""
    minute = start // MINUTE
    return [
        {
            "server": f"s{i:03}",
            "service": f"svc{i % 4}",
            "component": "DiskUsedPercentage",
            "value": 0.95 if (minute // (i % 5 + 1)) % 2 else 0.5,
            "timestamp": start + i % 50,
            "active": True,
        }
        for i in range(SERVERS)
    ]


def queued(port: int) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith("sereno_notifications_queued{"):
            return float(line.split()[-1])
    return -1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--down", type=float, default=10, help="minutes the receiver is down")
    parser.add_argument("--speed", type=float, default=6, help="event minutes per real minute")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sereno-outage-"))
    db, port, hook_port = work / "sereno.db", free_port(), free_port()
    hook = f"http://127.0.0.1:{hook_port}/hook"
    received = Received()
    process = serve(db, port, hook)
    start = int(time.time()) // MINUTE * MINUTE - 24 * 3600  # a day ago, whole minutes
    pushed_minutes = 0
    down_until = time.monotonic() + args.down * 60
    print(f"receiver down for {args.down:g} min; pushing {args.speed:g} event minutes a minute")
    while time.monotonic() < down_until:
        events = minute_of_events(start + pushed_minutes * MINUTE)
        answer = httpx.post(f"http://127.0.0.1:{port}/events", json=events)
        assert answer.status_code == 202, answer.text
        pushed_minutes += 1
        time.sleep(MINUTE / args.speed)
    # one event two minutes on closes the last minute pushed
    closing = minute_of_events(start + (pushed_minutes + 2) * MINUTE)[:1]
    httpx.post(f"http://127.0.0.1:{port}/events", json=closing)
    time.sleep(2)
    waiting = queued(port)
    print(f"pushed {pushed_minutes} minutes; {waiting:g} notifications queued; receiver back")
    back = time.monotonic()
    received.delay = 0.05  # slow enough to be killed mid-delivery
    server = receiver(hook_port, received)
    while len(received.keys) < min(20, waiting / 2):
        time.sleep(0.01)
    process.kill()  # SIGKILL, between a send and its acknowledgement if the timing is right
    process.wait()
    print(f"sereno killed (SIGKILL) after {len(received.keys)} deliveries; started again")
    received.delay = 0
    process = serve(db, port, hook)
    while queued(port) != 0:
        time.sleep(0.5)
    drained = time.monotonic() - back
    process.terminate()
    process.wait()
    server.shutdown()
    report(received, drained, db.with_suffix(".log"))


def report(received: Received, drained: float, log: Path) -> None:
    keys = received.keys
    unique = dict.fromkeys(keys)
    changes = [json.loads(line) for line in log.read_text().splitlines()]
    expected = [c for c in changes if c["state"] in ("firing", "resolved") and c["fired"]]
    minutes = [_minute(body) for body in received.bodies]
    in_order = all(a <= b for a, b in itertools.pairwise(minutes))
    print(f"alert changes logged: {len(expected)} (firing or resolved, after firing)")
    print(
        f"notifications received: {len(keys)}, distinct keys: {len(unique)}, "
        f"duplicates: {len(keys) - len(unique)}"
    )
    print(f"every change delivered: {len(unique) == len(expected)}; in order: {in_order}")
    print(f"all delivered {drained:.1f} s after the receiver came back")


def _minute(body: dict[str, Any]) -> float:
    alert = body["alerts"][0]
    at = alert["endsAt"] if body["status"] == "resolved" else alert["startsAt"]
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
