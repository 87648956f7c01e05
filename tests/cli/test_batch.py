"""End to end: the installed `sereno` command on the shipped sample and on made-up input."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path

from conftest import SAMPLE, event, expected_lines, json_lines, run_sereno, sereno_executable

# Worked out by hand from sample.json and the two default rules (see README.md).
SAMPLE_ALERTS = expected_lines("sample.alerts.txt")
SAMPLE_SUMMARY = (
    "sereno: 7 alerts (4 'Disk consumption exceeds 90%', 3 '5 min load average exceeds 4.0'); "
    "71 records read, 0 rejected\n"
)
DISK = "Disk consumption exceeds 90%"
LOAD = "5 min load average exceeds 4.0"
SEVERITIES = ["MEDIUM", "HIGH", "HIGH", "MEDIUM", "MEDIUM", "HIGH", "MEDIUM"]


def test_sample_alerts() -> None:
    result = run_sereno(SAMPLE)
    assert result.returncode == 0
    assert result.stdout.splitlines() == SAMPLE_ALERTS
    assert result.stderr == SAMPLE_SUMMARY


def test_sample_with_severity() -> None:
    result = run_sereno("-s", SAMPLE)
    expected = [f"{sev} {line}" for sev, line in zip(SEVERITIES, SAMPLE_ALERTS, strict=True)]
    assert result.stdout.splitlines() == expected


def test_sample_from_stdin() -> None:
    result = run_sereno("-", stdin=SAMPLE.read_bytes())
    assert result.returncode == 0
    assert result.stdout.splitlines() == SAMPLE_ALERTS


def test_sample_as_json_lines_gives_the_same_alerts(
    write_file: Callable[[str, bytes], Path],
) -> None:
    records = json.loads(SAMPLE.read_text())
    path = write_file("sample.jsonl", json_lines(*records))
    assert run_sereno(path).stdout.splitlines() == SAMPLE_ALERTS


def test_sample_as_json() -> None:
    result = run_sereno("--format", "json", SAMPLE)
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert alerts[0] == {
        "kind": "server",
        "rule": DISK,
        "severity": "MEDIUM",
        "timestamp": 1476057609,
        "component": "DiskUsedPercentage",
        "value": 0.93,
        "server": "reporting_pdf02",
        "service": "ReportPDFGenerator",
    }
    assert alerts[1] == {
        "kind": "majority",
        "rule": LOAD,
        "severity": "HIGH",
        "timestamp": 1476057660,
        "component": "Load5mAvg",
        "value": 5.6,
        "service": "InboxService",
        "threshold": "4.0",
        "matched_servers": ["inbox_production01", "inbox_production02"],
        "matched": 2,
        "active": 3,
    }
    # the active/passive pair: facebook_realtime02 is passive and left out of both counts
    assert alerts[5]["matched_servers"] == ["facebook_realtime01"]
    assert (alerts[5]["matched"], alerts[5]["active"]) == (1, 1)
    assert [a["rule"] for a in alerts] == [DISK, LOAD, LOAD, DISK, DISK, LOAD, DISK]


def test_color_always_colors_by_severity() -> None:
    result = run_sereno("--color", "always", SAMPLE, env={"NO_COLOR": "1"})
    lines = result.stdout.splitlines()
    assert lines[0] == f"\x1b[33m{SAMPLE_ALERTS[0]}\x1b[0m"  # MEDIUM is yellow
    assert lines[1] == f"\x1b[35m{SAMPLE_ALERTS[1]}\x1b[0m"  # HIGH is magenta


def test_no_color_when_not_a_terminal() -> None:
    assert "\x1b" not in run_sereno(SAMPLE).stdout


def run_on_terminal(*args: str | Path, env: dict[str, str] | None = None) -> str:
    """Run with stdout on a pseudo-terminal 20 columns wide; return what the terminal got."""
    main, replica = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environment.update({"COLUMNS": "20", "TERM": "xterm", **(env or {})})
    process = subprocess.Popen(
        [sereno_executable(), *map(str, args)],
        stdout=replica,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    os.close(replica)
    seen = drain(main)
    process.wait(timeout=30)
    return seen.decode()


def drain(terminal: int) -> bytes:
    """Everything written to a pseudo-terminal until its other end closes; closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # Linux reports the closed end as EIO
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    return b"".join(chunks)


def test_a_terminal_gets_colored_lines_never_wrapped() -> None:
    lines = run_on_terminal(SAMPLE).splitlines()
    assert lines[0] == f"\x1b[33m{SAMPLE_ALERTS[0]}\x1b[0m"
    assert len(lines) == len(SAMPLE_ALERTS)


def test_no_color_env_turns_color_off_on_a_terminal() -> None:
    lines = run_on_terminal(SAMPLE, env={"NO_COLOR": "1"}).splitlines()
    assert lines == SAMPLE_ALERTS


def test_color_never() -> None:
    assert run_on_terminal("--color", "never", SAMPLE).splitlines() == SAMPLE_ALERTS


def test_rejected_records_give_exit_status_1_and_the_rest_is_evaluated(
    write_file: Callable[[str, bytes], Path],
) -> None:
    path = write_file(
        "in.jsonl",
        json_lines(
            event(component="DiskUsedPercentage", value=0.95, server="a"),
            event(value="high"),
        ),
    )
    result = run_sereno(path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "ALERT timestamp: 1476057600, component: DiskUsedPercentage, value: 0.95, "
        "server: a, service: InboxService"
    ]
    assert result.stderr.splitlines() == [
        f"{path}:2: field 'value': expected a finite number, got a string; record skipped",
        f"sereno: 1 alert (1 {DISK!r}, 0 {LOAD!r}); 2 records read, 1 rejected",
    ]


def test_late_events_are_reported_and_counted(write_file: Callable[[str, bytes], Path]) -> None:
    path = write_file(
        "in.jsonl",
        json_lines(
            event(timestamp=1476057600),
            event(timestamp=1476057700),
            event(component="DiskUsedPercentage", value=0.95, timestamp=1476057610),
        ),
    )
    result = run_sereno("-q", path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{path}:3: late event: timestamp 1476057610 belongs to a minute that was already "
        "evaluated; record skipped\n"
    )


def test_condition_errors_are_summarised_per_rule(write_file: Callable[[str, bytes], Path]) -> None:
    rules = write_file(
        "rules.yaml",
        b"severities: {LOW: {}}\nrules:\n  - {name: zone, severity: LOW, condition: zone > 3}\n",
    )
    path = write_file("in.jsonl", json_lines(event(zone="a"), event(zone=5, server="b")))
    result = run_sereno("-r", rules, "-q", path)
    assert result.returncode == 1
    assert result.stdout.startswith(
        "ALERT timestamp: 1476057600, component: Load5mAvg, value: 1.0, server: b"
    )
    assert result.stderr == (
        "sereno: rule 'zone': the condition could not be evaluated for 1 event(s), which did not "
        "match (first: server inbox_production01, component Load5mAvg: data type mismatch)\n"
    )


def test_extra_fields_are_usable_in_conditions(write_file: Callable[[str, bytes], Path]) -> None:
    rules = write_file(
        "rules.yaml",
        b"severities: {LOW: {}}\nrules:\n"
        b'  - {name: eu, severity: LOW, condition: region == "eu" and value > 2}\n',
    )
    path = write_file(
        "in.jsonl",
        json_lines(
            event(region="eu", value=3),
            event(server="b", value=3),
            event(server="c", region="us", value=3),
        ),
    )
    result = run_sereno("-r", rules, path)
    assert result.returncode == 0
    assert result.stdout == (
        "ALERT timestamp: 1476057600, component: Load5mAvg, value: 3, server: inbox_production01, "
        "service: InboxService\n"
    )


def test_check_lists_the_default_rules() -> None:
    result = run_sereno("check")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "<packaged rules.yaml>: valid, 2 rules, 4 severities",
        f"  {DISK}",
        "    MEDIUM, per-server, threshold 90%",
        '    condition (compiled): component == "DiskUsedPercentage" and value > 0.9 and active',
        "    no data for 10m: resolve",
        f"  {LOAD}",
        "    HIGH, majority, threshold 4.0",
        '    condition (compiled): component == "Load5mAvg" and value > 4.0 and active',
        "    no data for 5m: resolve",
    ]


def test_check_lists_each_rules_settings(write_file: Callable[[str, bytes], Path]) -> None:
    rules = write_file(
        "rules.yaml",
        b"severities: {LOW: {}, HIGH: {}}\n"
        b"rules:\n"
        b"  - {name: down, severity: HIGH, absent: 3m}\n"
        b"  - name: disk\n"
        b"    levels:\n"
        b"      - {severity: HIGH, condition: value > 0.97}\n"
        b"      - {severity: LOW, condition: value > 0.9, for: 5m}\n"
        b"    recover_when: value < 0.8\n"
        b"    keep_firing_for: 10m\n"
        b"    on_missing: keep\n"
        b"    flapping: {window: 10}\n"
        b"    inhibited_by: [down]\n"
        b"    equal: [service, server]\n"
        b"  - {name: load, severity: LOW, condition: value > 4, majority: true, threshold: 4,\n"
        b'     quorum: ">= 2/3", min_active: 2, missing_after: 2m}\n',
    )
    result = run_sereno("check", rules)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{rules}: valid, 3 rules, 2 severities",
        "  down",
        "    HIGH, absent 3m",
        "    condition (compiled): active",
        "  disk",
        "    LOW to HIGH, per-server",
        "    level LOW, for 5m, condition (compiled): value > 0.9",
        "    level HIGH, condition (compiled): value > 0.97",
        "    recover when (compiled): value < 0.8",
        "    keep firing for 10m",
        "    no data for 5m: keep",
        "    flapping: window 10, high 0.5, low 0.25",
        "    inhibited by: 'down' (equal: service, server)",
        "  load",
        "    LOW, majority, threshold 4",
        "    condition (compiled): value > 4",
        "    no data for 2m: alert",
        "    quorum: >= 2/3 of the active servers, with at least 2 active servers",
    ]


def test_check_refuses_a_bad_file(write_file: Callable[[str, bytes], Path]) -> None:
    path = write_file(
        "bad.yaml", b"severities: {LOW: {}}\nrules:\n  - {name: a, severity: HIGH, condition: x}\n"
    )
    result = run_sereno("check", path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{path}:3:25: rule 'a': key 'severity': unknown severity 'HIGH' (known: LOW)\n"
        "sereno: the rules file was refused\n"
    )


def test_help_shows_every_command_and_flag() -> None:
    result = run_sereno("-h")
    assert result.returncode == 0
    for flag in (
        "-r",
        "--rules-config",
        "-s",
        "--show-severity",
        "--format",
        "--color",
        "--strict",
        "-q",
        "--quiet",
        "-v",
        "--version",
        "sereno check",
    ):
        assert flag in result.stdout


def test_version() -> None:
    result = run_sereno("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sereno ")


def test_usage_errors_exit_2() -> None:
    result = run_sereno("--format", "xml", SAMPLE)
    assert result.returncode == 2
    assert "sereno: error: argument --format: invalid choice: 'xml'" in result.stderr
    assert run_sereno().returncode == 2


def test_python_dash_m_runs_the_same_program() -> None:
    python = Path(sereno_executable()).parent / "python"
    result = subprocess.run(
        [python, "-m", "sereno", str(SAMPLE)], capture_output=True, text=True, check=False
    )
    assert result.stdout.splitlines() == SAMPLE_ALERTS


def test_json_lines_are_streamed_in_memory_bounded_by_the_window(tmp_path: Path) -> None:
    # 300,000 events over 300 minutes (~40 MB): read whole, the same events take about 90 MB
    path = tmp_path / "big.jsonl"
    line = (
        '{{"server":"s{s}","service":"S","component":"Load5mAvg","value":1.5,'
        '"timestamp":{t},"active":true}}\n'
    )
    with path.open("w") as out:
        for minute in range(300):
            out.write(
                "".join(line.format(s=s, t=1476057600 + minute * 60 + s % 60) for s in range(1000))
            )
    peak_kib = peak_rss_kib([sereno_executable(), "-q", str(path)])
    assert peak_kib < 50 * 1024, f"peak RSS {peak_kib} KiB"


def peak_rss_kib(command: list[str]) -> int:
    """Run `command` from a fresh Python and return the peak RSS of that child alone."""
    measure = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    python = str(Path(sereno_executable()).parent / "python")
    result = subprocess.run(
        [python, "-c", measure, *command], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


def many_alerts(path: Path, minutes: int) -> Path:
    line = (
        '{{"server":"s{s}","service":"S","component":"DiskUsedPercentage","value":0.95,'
        '"timestamp":{t},"active":true}}\n'
    )
    with path.open("w") as out:
        for minute in range(minutes):
            out.write(
                "".join(line.format(s=s, t=1476057600 + minute * 60 + s % 60) for s in range(1000))
            )
    return path


def test_a_reader_that_stops_early_is_not_an_error(tmp_path: Path) -> None:
    path = many_alerts(tmp_path / "alerts.jsonl", 50)
    process = subprocess.Popen(
        [sereno_executable(), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # like `sereno FILE | head -1`
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 0
    assert first.startswith(b"ALERT timestamp: 1476057600")
    assert "Traceback" not in stderr and "Error" not in stderr


def test_a_progress_bar_shows_on_a_terminal_for_large_files(tmp_path: Path) -> None:
    path = many_alerts(tmp_path / "alerts.jsonl", 80)  # about 10 MB
    main, replica = pty.openpty()
    process = subprocess.Popen(
        [sereno_executable(), "-q", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=replica,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(replica)
    seen = drain(main)
    assert process.wait(timeout=60) == 0
    assert b"alerts.jsonl" in seen and "━".encode() in seen
