"""`sereno FILE --episodes` and `--allowed-lateness`, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import REPO, SAMPLE, disk_in_minute, event, json_lines, run_sereno

T0 = 1476057600


def test_episodes_of_the_sample_worked_out_by_hand() -> None:
    result = run_sereno("--episodes", SAMPLE)
    assert result.returncode == 0
    disk, load = "Disk consumption exceeds 90%", "5 min load average exceeds 4.0"
    pdf = "server: reporting_pdf02, service: ReportPDFGenerator"
    assert result.stdout.splitlines() == [
        f"EPISODE rule: {disk}, {pdf}, started: {T0}, ended: {T0 + 60}, peak: 0.93, windows: 1",
        f"EPISODE rule: {load}, service: InboxService, threshold: 4.0, started: {T0 + 60}, "
        f"ended: {T0 + 180}, peak: 10.2, windows: 2",
        f"EPISODE rule: {disk}, {pdf}, started: {T0 + 120}, ended: {T0 + 240}, peak: 0.95, "
        "windows: 2",
        f"EPISODE rule: {disk}, server: inbox_production02, service: InboxService, "
        f"started: {T0 + 240}, ended: still firing, peak: 0.97, windows: 1",
        f"EPISODE rule: {load}, service: FacebookRealtime, threshold: 4.0, started: {T0 + 240}, "
        "ended: still firing, peak: 6.5, windows: 1",
    ]
    assert result.stderr.startswith(f"sereno: 5 episodes (3 {disk!r}, 2 {load!r});")


def test_episodes_as_json() -> None:
    result = run_sereno("--episodes", "--format", "json", SAMPLE)
    first, *_, last = map(json.loads, result.stdout.splitlines())
    assert {key: first[key] for key in ("kind", "state", "started", "fired", "ended", "peak")} == {
        "kind": "episode",
        "state": "resolved",
        "started": T0,
        "fired": T0,
        "ended": T0 + 60,
        "peak": 0.93,
    }
    assert (first["server"], first["last"]["kind"], first["last"]["value"]) == (
        "reporting_pdf02",
        "server",
        0.93,
    )
    assert (last["server"], last["service"], last["state"], last["ended"]) == (
        None,
        "FacebookRealtime",
        "firing",
        None,
    )


def test_the_default_output_is_one_line_per_firing_minute_with_for(
    write_file: Callable[[str, bytes | str], Path],
) -> None:
    rules = write_file(
        "rules.yaml",
        "severities: {LOW: {}}\nrules:\n"
        "  - {name: hot, severity: LOW, condition: value > 5, for: 2m}\n",
    )
    events = write_file(
        "e.jsonl",
        json_lines(*(event(value=9, timestamp=T0 + 60 * n) for n in range(3))),
    )
    result = run_sereno("-r", rules, events, "-q")
    assert [line.split(",")[0] for line in result.stdout.splitlines()] == [
        f"ALERT timestamp: {T0 + 60}",
        f"ALERT timestamp: {T0 + 120}",
    ]
    episodes = run_sereno("-r", rules, events, "-q", "--episodes")
    assert f"started: {T0}, fired: {T0 + 60}, ended: still firing" in episodes.stdout


def test_allowed_lateness_decides_what_is_late(
    write_file: Callable[[str, bytes | str], Path],
) -> None:
    events = write_file(
        "e.jsonl",
        json_lines(
            event(component="DiskUsedPercentage", value=0.95, timestamp=T0 + 10),
            event(component="DiskUsedPercentage", value=0.5, timestamp=T0 + 100),
            event(component="DiskUsedPercentage", value=0.5, timestamp=T0 + 20),
        ),
    )
    in_time = run_sereno(events, "--allowed-lateness", "60")
    assert (in_time.returncode, in_time.stdout) == (0, "")  # the later 0.5 is the latest sample
    late = run_sereno(events, "--allowed-lateness", "30")
    assert late.returncode == 1
    assert f"{events}:3: late event" in late.stderr
    assert late.stdout.startswith(f"ALERT timestamp: {T0 + 10},")


def test_a_bad_allowed_lateness_is_a_usage_error() -> None:
    result = run_sereno(SAMPLE, "--allowed-lateness", "-5")
    assert result.returncode == 2
    assert "argument --allowed-lateness: expected a number of seconds, got '-5'" in result.stderr


def test_notices_of_the_controls_example_worked_out_by_hand() -> None:
    """examples/controls_events.jsonl with examples/controls.yaml, minute by minute (see the
    README's section on the controls and examples/controls_test.yaml for the reasoning)."""
    examples = REPO / "examples"
    result = run_sereno(
        examples / "controls_events.jsonl",
        "-r",
        examples / "controls.yaml",
        "--notices",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    told = [json.loads(line) for line in result.stdout.splitlines()]
    got = [
        ((n["at"] - 1476057600) // 60, n["change"], n["rule"], n["server"] or n["service"])
        for n in told
    ]
    disk, load, slow, errors = (
        "Disk filling up",
        "Service overloaded",
        "Slow responses",
        "Error rate high",
    )
    assert got == [
        (0, "fired", load, "Checkout"),  # app01 of 2 is half: quorum ">= 50%"
        (0, "fired", errors, "api01"),
        (1, "fired", disk, "web01"),  # WARNING's for: 2m is up at the end of minute 1
        (1, "fired", disk, "web02"),
        (1, "resolved", errors, "api01"),
        (2, "escalated", disk, "web01"),  # 0.97: CRITICAL, which has no for:
        (2, "fired", errors, "api01"),
        (3, "de-escalated", disk, "web01"),
        (3, "resolved", errors, "api01"),
        (4, "flapping", errors, "api01"),  # four changes: 4.625 / 9 >= 0.5
        (5, "resolved", load, "Checkout"),  # last match in minute 1, keep_firing_for: 3m
        (5, "resolved", disk, "web01"),  # 0.79 < 0.8 (minute 4's 0.83 kept it firing)
        (5, "fired", slow, "app02"),  # slow since minute 0, inhibited until now
        (7, "resolved", slow, "app02"),
        (11, "no data", disk, "web02"),  # nothing in minutes 2-11: missing_after 10m
        (13, "stopped flapping", errors, "api01"),  # two changes left: 1.5625 / 9 < 0.25
    ]
    assert result.stderr.startswith("sereno: 16 notices (6 'Disk filling up'")


def test_notices_of_alerts_that_start_flapping_together_come_in_the_same_order_every_run(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "severities:\n"
        "  HIGH: {}\n"
        "rules:\n"
        "  - name: disk\n"
        "    severity: HIGH\n"
        '    condition: component == "DiskUsedPercentage" and value > 0.9\n'
        "    flapping: true\n"
    )
    # twelve servers, each full and not full in turn: they start flapping in the same minute
    events = tmp_path / "events.jsonl"
    servers = [f"web{index:02}" for index in range(12)]
    lines = [
        json.dumps(disk_in_minute(server, 0.95 if minute % 2 == 0 else 0.5, minute))
        for minute in range(12)
        for server in servers
    ]
    events.write_text("\n".join(lines) + "\n")
    runs = [
        run_sereno(events, "-r", rules, "--notices", env={"PYTHONHASHSEED": str(seed)})
        for seed in range(4)
    ]
    flapping = [line for line in runs[0].stdout.splitlines() if "change: flapping" in line]
    assert [line.split("server: ")[1].split(",")[0] for line in flapping] == servers
    assert all(run.stdout == runs[0].stdout for run in runs[1:])
