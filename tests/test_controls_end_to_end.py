"""Every control of `examples/controls.yaml` over one fleet, end to end: `sereno FILE` and a
`sereno serve` killed (SIGKILL) half way and restarted on its state file tell the same
notices and keep the same episodes, both as worked out by hand below.

The events are `data/scenarios/controls_fleet.jsonl`, written by `controls_fleet.py` beside it,
whose docstring says what each server sends in each minute. Minutes are counted from
1476057600 (minute 0); the whole file is minutes 0 to 25.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from peers import HttpReceiver

from conftest import DATA, REPO, Server, event, run_sereno

T0 = 1476057600
EVENTS = DATA / "scenarios" / "controls_fleet.jsonl"
RULES = REPO / "examples" / "controls.yaml"
LAST_MINUTE = 25  # the file's last minute: the expectations cover minutes 0 to 25
KILLED_AFTER = 7  # the service is killed with minutes 0-7 pushed (0-6 evaluated)

DISK, OVERLOAD, SLOW, ERRORS = (
    "Disk filling up",
    "Service overloaded",
    "Slow responses",
    "Error rate high",
)


class Told(NamedTuple):
    """A notice: the minute of the change, the rule, the server (the service for a majority
    rule), why (fired, escalated, ...), and the alert's severity and state then."""

    minute: int
    rule: str
    who: str
    reason: str
    severity: str
    state: str


# Every notice the scenario calls for, in the order of the minutes (reminders aside: the
# service's repeat_interval is longer than the file). Worked out from the rules (see
# examples/controls.yaml and the rules file's header) and the fleet's events.
NOTICES = [
    # file02's disk is above 85% from minute 0: WARNING's 2m have held at the end of minute 1
    Told(1, DISK, "file02", "fired", "WARNING", "firing"),
    # api01's error rate is above 5% in minute 2: no `for:`, it fires at once; the flap
    # history starts with it (1 evaluation, no change yet)
    Told(2, ERRORS, "api01", "fired", "HIGH", "firing"),
    # file01's disk is above 85% from minute 2 (0.88): fires at the end of minute 3
    Told(3, DISK, "file01", "fired", "WARNING", "firing"),
    # api01 at 1% in minute 3: resolved; 1 change in 2 evaluations, weighing 1.25 of 9:
    # 0.14, below `high` (0.5)
    Told(3, ERRORS, "api01", "resolved", "HIGH", "resolved"),
    # app01 and app02 above 4.0 from minute 4: 2 of Shop's 4 active servers, ">= 50%" (with
    # the default "> 50%" it would not be a quorum); min_active 2 is met; no `for:`
    Told(4, OVERLOAD, "Shop", "fired", "HIGH", "firing"),
    # api01 above 5% again: 2 changes in 3 evaluations, (1.25 + 1.1875) / 9 = 0.27 < 0.5
    Told(4, ERRORS, "api01", "fired", "HIGH", "firing"),
    # file01 at 0.97 in minute 5: CRITICAL (no `for:`) is reached at once, a level up
    Told(5, DISK, "file01", "escalated", "CRITICAL", "firing"),
    # (app03's slow responses fire in minute 5 too, but Shop's overload fires: inhibited,
    # recorded and not told)
    # api01 at 1%: 3 changes in 4 evaluations, 3.5625 / 9 = 0.40 < 0.5: still told
    Told(5, ERRORS, "api01", "resolved", "HIGH", "resolved"),
    # api01 above 5% in minute 6: 4 changes in 5 evaluations, 4.625 / 9 = 0.51 >= 0.5: it
    # starts flapping, so its firing is not told; the flapping is
    Told(6, ERRORS, "api01", "flapping", "HIGH", "firing"),
    # file01 at 0.90 in minute 7: above 85% only, WARNING's run has gone on since minute 2
    Told(7, DISK, "file01", "de-escalated", "WARNING", "firing"),
    # (minute 7: Shop's load is down, its last match is minute 6; api01 resolves, and minute
    # 8 it fires again, neither told while it flaps. file01 at 0.83 and 0.82 in minutes 8-9 is
    # neither above 85% nor below 80% (recover_when): it keeps firing, nothing to tell)
    # file01 at 0.78 in minute 10: below 80%, resolved
    Told(10, DISK, "file01", "resolved", "WARNING", "resolved"),
    # Shop: minute 10 starts 3 minutes (keep_firing_for) after minute 6, its last match, ends
    Told(10, OVERLOAD, "Shop", "resolved", "HIGH", "resolved"),
    # app03 is still slow (3.0s) as the inhibition ends: it is told then, as firing
    Told(10, SLOW, "app03", "fired", "WARNING", "firing"),
    # file02's last data is minute 2: minutes 3 to 12 are its 10 minutes (missing_after)
    # without; on_missing: alert, so it is "no data"
    Told(12, DISK, "file02", "no data", "WARNING", "no data"),
    # app03 at 0.4s from minute 13: resolved, and told since its firing was
    Told(13, SLOW, "app03", "resolved", "WARNING", "resolved"),
    # file02 reports 0.92 again in minute 14: firing again (its WARNING `for:` starts again,
    # but an alert firing already stays at its level)
    Told(14, DISK, "file02", "data back", "WARNING", "firing"),
    # api01 above 5% from minute 8 on: the 10-evaluation window (minutes 6-15 in minute 15)
    # holds 2 changes left, at ages 7 and 8: (0.8125 + 0.75) / 9 = 0.17 < `low` (0.25); in
    # minute 14 it was 3 changes, (0.875 + 0.8125 + 0.75) / 9 = 0.27. Firing now.
    Told(15, ERRORS, "api01", "stopped flapping", "HIGH", "firing"),
    # file02 at 0.50 in minute 25: below 80%, resolved
    Told(25, DISK, "file02", "resolved", "WARNING", "resolved"),
]


class Kept(NamedTuple):
    """An episode: rule, server (service for a majority rule), the minutes it started, fired
    and ended (None: open), its severity and state at the end, why it ended, and its marks."""

    rule: str
    who: str
    started: int
    fired: int
    ended: int | None
    severity: str
    state: str
    ended_by: str | None
    flapping: bool = False
    inhibited: bool = False
    notified: bool = True
    no_data_since: int | None = None
    unmatched_servers: tuple[str, ...] = ()


# Every episode that fired, in the order they started (then rule order, as listed).
EPISODES = [
    # started in minute 0 (pending), fired in minute 1, "no data" in 12, back in 14 (which
    # clears its no_data_since), resolved in 25 below 80%; WARNING all along
    Kept(DISK, "file02", 0, 1, 25, "WARNING", "resolved", "recovered"),
    # pending from minute 2, fired in 3, CRITICAL in 5-6, WARNING again from 7, held by
    # recover_when in 8-9, resolved in 10: it ends at WARNING
    Kept(DISK, "file01", 2, 3, 10, "WARNING", "resolved", "recovered"),
    # the first two of api01's firings, each for a minute, both told (not flapping yet)
    Kept(ERRORS, "api01", 2, 2, 3, "HIGH", "resolved", "recovered"),
    # fired in 4, last matched in 6, kept firing 3 minutes; app03 and app04 reported and did
    # not match in its latest matching minute
    Kept(
        OVERLOAD,
        "Shop",
        4,
        4,
        10,
        "HIGH",
        "resolved",
        "recovered",
        unmatched_servers=("app03", "app04"),
    ),
    Kept(ERRORS, "api01", 4, 4, 5, "HIGH", "resolved", "recovered"),
    # fired in 5 while Shop was overloaded; no longer inhibited (and told) from 10; ended in 13
    Kept(SLOW, "app03", 5, 5, 13, "WARNING", "resolved", "recovered"),
    # fired in 6 as it started flapping, resolved in 7 while flapping: never told
    Kept(ERRORS, "api01", 6, 6, 7, "HIGH", "resolved", "recovered", flapping=True, notified=False),
    # fired in 8 while flapping (not told), told by "stopped flapping" in 15, open at the end
    Kept(ERRORS, "api01", 8, 8, None, "HIGH", "firing", None),
]

# What `GET /alerts` shows once minute 6 is evaluated, when the service is killed: (rule,
# who, severity, state, flapping, inhibited). file01 at CRITICAL (minutes 5-6 above 95%);
# file02 silent since minute 2, but not for 10 minutes yet; Shop overloaded; app03 slow and
# inhibited; api01's third firing, flapping.
OPEN_WHEN_KILLED = {
    (DISK, "file02", "WARNING", "firing", False, False),
    (DISK, "file01", "CRITICAL", "firing", False, False),
    (OVERLOAD, "Shop", "HIGH", "firing", False, False),
    (SLOW, "app03", "WARNING", "firing", False, True),
    (ERRORS, "api01", "HIGH", "firing", True, False),
}


def minute(timestamp: int) -> int:
    return (timestamp - T0) // 60


def kept(record: dict[str, Any]) -> Kept:
    """An episode record (`--episodes --format json`, `/alerts/history`) as a `Kept`."""
    ended, since = record["ended"], record.get("no_data_since")
    return Kept(
        record["rule"],
        record["server"] or record["service"],
        minute(record["started"]),
        minute(record["fired"]),
        None if ended is None else minute(ended),
        record["severity"],
        record["state"],
        record.get("ended_by"),
        record.get("flapping", False),
        record.get("inhibited", False),
        record.get("notified", False),
        None if since is None else minute(since),
        tuple(record.get("unmatched_servers", ())),
    )


def in_order(episodes: list[Kept]) -> list[Kept]:
    rules = [DISK, OVERLOAD, SLOW, ERRORS]
    return sorted(episodes, key=lambda e: (e.started, rules.index(e.rule), e.who))


def json_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- batch -----------------------------------------------------------------------------------


def test_the_file_is_what_its_generator_writes() -> None:
    """The checked-in events are the generator's: the scenario its docstring tells."""
    ran = run_python(DATA / "scenarios" / "controls_fleet.py")
    assert ran == EVENTS.read_text(encoding="utf-8")


def run_python(script: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=True
    )
    return result.stdout


def test_batch_tells_the_notices_and_keeps_the_episodes_worked_out_by_hand() -> None:
    notices = run_sereno(EVENTS, "-r", RULES, "--notices", "--format", "json")
    assert notices.returncode == 0, notices.stderr
    told = [
        Told(
            minute(r["at"]),
            r["rule"],
            r["server"] or r["service"],
            r["change"],
            r["severity"],
            r["state"],
        )
        for r in json_records(notices.stdout)
    ]
    assert sorted(told) == sorted(NOTICES)

    episodes = run_sereno(EVENTS, "-r", RULES, "--episodes", "--format", "json")
    assert episodes.returncode == 0, episodes.stderr
    assert in_order([kept(r) for r in json_records(episodes.stdout)]) == EPISODES


# --- service ---------------------------------------------------------------------------------


def notice_of(request_headers: dict[str, str], payload: dict[str, Any]) -> Told:
    """A webhook notice as a `Told`. The minute of the change is not among the payload's
    times (startsAt is the episode's start, endsAt its end): it is the `at` that ends the
    idempotency key, `{fingerprint}-{reason}-{at}`."""
    alert = payload["alerts"][0]
    labels, annotations = alert["labels"], alert["annotations"]
    key = request_headers["idempotency-key"]
    fingerprint, rest = key.split("-", 1)
    reason, at = rest.rsplit("-", 1)
    assert (fingerprint, reason) == (alert["fingerprint"], annotations["change"]), key
    # the state says ", flapping" while it flaps; the flapping notice is what tells of it
    state = annotations["state"].split(", ")[0]
    return Told(
        minute(int(at)),
        labels["alertname"],
        labels.get("server", labels["service"]),
        annotations["change"],
        labels["severity"],
        state,
    )


def delivered(receiver: HttpReceiver) -> list[tuple[Told, str]]:
    """The notices acknowledged, with their episode's start (startsAt): each idempotency key
    once. A notice sent before the kill and sent again after the restart, because its answer
    was not recorded in time, carries the same key; the receiver is to drop the repeat, so
    it counts once here. Nothing else is merged."""
    seen: dict[str, tuple[Told, str]] = {}
    for request in receiver.requests:
        if 200 <= request.status < 300:
            alert = request.json["alerts"][0]
            told = notice_of(request.headers, request.json)
            seen.setdefault(request.headers["idempotency-key"], (told, alert["startsAt"]))
    return list(seen.values())


def history(server: Server) -> list[Kept]:
    return in_order([kept(r) for r in server.get("/alerts/history").json()])


def push(server: Server, path: Path) -> None:
    pushed = run_sereno("push", path, "--url", f"{server.url}/events")
    assert pushed.returncode == 0, pushed.stderr


def open_alerts(server: Server) -> set[tuple[str, str, str, str, bool, bool]]:
    return {
        (
            a["rule"],
            a["server"] or a["service"],
            a["severity"],
            a["state"],
            a.get("flapping", False),
            a.get("inhibited", False),
        )
        for a in server.get("/alerts").json()
    }


def until(done: Callable[[], bool], seconds: float = 20) -> None:
    """Wait until `done()`, or the deadline; the assertions that follow say what is wrong."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if done():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def test_a_service_killed_half_way_agrees_with_the_hand_worked_notices_and_episodes(
    tmp_path: Path,
    start_server: Callable[..., Server],
    http_receiver: HttpReceiver,
) -> None:
    lines = EVENTS.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = T0 + 60 * (KILLED_AFTER + 1)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("".join(line for line in lines if json.loads(line)["timestamp"] < cut))
    rest.write_text("".join(line for line in lines if json.loads(line)["timestamp"] >= cut))
    config = tmp_path / "notify.yaml"
    # reminders would be due every repeat_interval of event time: far beyond the file's end
    config.write_text(
        "defaults: {repeat_interval: 24h}\n"
        f'receivers:\n  - {{name: hook, type: webhook, url: "{http_receiver.url}"}}\n'
    )
    args = ("-r", str(RULES), "--db", str(tmp_path / "state.db"), "--config", str(config))

    server = start_server(*args)
    # minutes 0-7 pushed: their newest events (minute 7, second 50) less the allowed
    # lateness (30s) close minutes 0-6; minute 7 stays open (event time moves on with the
    # clock too, but only 40 seconds from now would it close minute 7)
    push(server, first)
    until(lambda: open_alerts(server) == OPEN_WHEN_KILLED)
    assert open_alerts(server) == OPEN_WHEN_KILLED
    server.process.kill()  # SIGKILL: no chance to save anything more
    server.process.wait()

    again = start_server(*args)  # the same state file: its journal has minute 7's events
    push(again, rest)
    # the file's last events are in minute 25 (up to its second 50): an event of a component no
    # rule reads, at minute 26's second 59, closes minute 25 without waiting on the clock
    batch01 = event("batch01", "Batch", "QueueDepth", 12.0, T0 + 60 * (LAST_MINUTE + 1) + 59)
    again.post_lines(batch01)

    def all_told() -> bool:
        got = delivered(http_receiver)
        return len(got) >= len(NOTICES) and any(t.minute == LAST_MINUTE for t, _ in got)

    until(lambda: all_told() and history(again) == EPISODES)
    got = delivered(http_receiver)
    assert sorted(told for told, _ in got) == sorted(NOTICES)
    # each notice is about an episode that began where the expected one did
    starts = {(e.rule, e.who, e.started) for e in EPISODES}
    for told, starts_at in got:
        started = minute(int(datetime.fromisoformat(starts_at.replace("Z", "+00:00")).timestamp()))
        assert (told.rule, told.who, started) in starts, told
    assert history(again) == EPISODES
    again.stop()
