"""`sereno FILE --episodes` and `--allowed-lateness`, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from conftest import SAMPLE, event, json_lines, run_sereno

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
