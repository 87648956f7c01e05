"""`sereno FILE --jobs N`: the same output as one process, whatever the input holds."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import zlib
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from sereno.cli import jobs as job_module
from sereno.cli.jobcount import MIN_BYTES_FOR_JOBS, available_cores, jobs_for
from sereno.cli.jobs import JobFailed, _EventsDecoder, _OtherJob, _parts, _pieces
from sereno.engine.shard import BUCKETS, Shares
from sereno.engine.windows import Window
from sereno.events.schema import Event, event_type
from sereno.rules.rulefmt import load_default_rules, parse_rules

from conftest import event, json_lines, run_sereno

T0 = 1476057600

RULES = """
severities:
  LOW: {}
  HIGH: {color: red}
rules:
  - name: disk
    severity: LOW
    condition: component == "DiskUsedPercentage" and value > 0.9 and active
    on_missing: resolve
    missing_after: 3m
  - name: load
    severity: HIGH
    condition: component == "Load5mAvg" and value > 4.0 and active
    threshold: "4.0"
    majority: true
  - name: hot rack
    levels:
      - severity: LOW
        condition: component == "Temperature" and value > rack
        for: 2m
      - severity: HIGH
        condition: component == "Temperature" and value > rack + 10
    recover_when: component == "Temperature" and value < rack - 5
  - name: silent
    severity: HIGH
    absent: 3m
    condition: component == "Load5mAvg"
"""


def fleet(seed: int) -> bytes:
    """Twenty minutes of 12 services of 4 servers, with everything that tests a run: passive
    servers, two samples of a component in one minute, events out of order, late and far
    ahead, bad records, a field some events lack or hold as text (condition errors in
    several services), a server gone silent."""
    rng = random.Random(seed)
    records: list[dict[str, Any] | str] = []
    for minute in range(20):
        for service in range(12):
            for server in range(4):
                name = f"srv{service:02}{server}"
                if name == "srv0703" and minute > 8:
                    continue  # silent from minute 9
                for component in ("DiskUsedPercentage", "Load5mAvg", "Temperature"):
                    value = {
                        "DiskUsedPercentage": rng.choice([0.5, 0.85, 0.92, 0.99]),
                        "Load5mAvg": rng.choice([1.0, 3.9, 4.5, 8]),
                        "Temperature": rng.choice([20, 41, 55, 70]),
                    }[component]
                    extra: dict[str, Any] = {}
                    if component == "Temperature":
                        draw = rng.random()
                        if draw < 0.9:
                            extra["rack"] = 40
                        elif draw < 0.95:
                            extra["rack"] = "forty"  # a condition error
                    records.append(
                        event(
                            server=name,
                            service=f"svc{service:02}",
                            component=component,
                            value=value,
                            timestamp=T0 + 60 * minute + rng.randrange(60),
                            active=rng.random() > 0.1,
                            **extra,
                        )
                    )
        if minute == 5:
            records.append("{not json")
            records.append(event(server="srv0000", service="svc00", timestamp=T0 + 60))  # late
            records.append(event(server="srv0100", service="svc01", timestamp=T0 + 10**6))
        if minute == 12:
            records.append(event(server="srv0200", service="svc02", value="high"))
            # a field the rules read, holding an integer beyond 64 bits
            big: dict[str, Any] = {"component": "Temperature", "value": 70, "rack": 10**30}
            records.append(event(server="srv0300", service="svc03", timestamp=T0 + 730, **big))
    order = list(range(len(records)))
    for index in range(0, len(order) - 1, 7):  # a few neighbours swapped
        order[index], order[index + 1] = order[index + 1], order[index]
    return json_lines(*(records[index] for index in order))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("jobs")
    events, rules = folder / "fleet.jsonl", folder / "rules.yaml"
    events.write_bytes(fleet(seed=7))
    rules.write_text(RULES)
    return events, rules


@pytest.mark.parametrize(
    "mode",
    [
        (),
        ("--format", "json"),
        ("--episodes",),
        ("--episodes", "--format", "json"),
        ("--show-severity", "--color", "always"),
    ],
)
def test_every_number_of_jobs_prints_and_reports_what_one_process_does(
    files: tuple[Path, Path], mode: tuple[str, ...]
) -> None:
    events, rules = files
    one = run_sereno(events, "-r", rules, *mode, "--jobs", "1")
    assert one.returncode == 1  # bad, late and ahead records, condition errors
    assert "could not be evaluated" in one.stderr and "late event" in one.stderr
    assert one.stdout.count("\n") > 100
    for jobs in ("2", "3", "5"):
        run = run_sereno(events, "-r", rules, *mode, "--jobs", jobs)
        assert (run.stdout, run.stderr, run.returncode) == (one.stdout, one.stderr, 1), jobs


def test_the_first_condition_error_named_is_the_one_a_single_process_meets_first(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    for seed in range(4):
        events = tmp_path / f"fleet{seed}.jsonl"
        events.write_bytes(fleet(seed))
        one = run_sereno(events, "-r", rules, "--jobs", "1", "--quiet")
        many = run_sereno(events, "-r", rules, "--jobs", "4", "--quiet")
        assert "first: server" in one.stderr
        assert many.stderr == one.stderr


def test_runs_that_must_be_one_process_take_one_job(files: tuple[Path, Path]) -> None:
    events, rules = files
    notices = run_sereno(events, "-r", rules, "--notices", "--jobs", "1")
    assert run_sereno(events, "-r", rules, "--notices", "--jobs", "3").stdout == notices.stdout
    stdin = run_sereno("-", "-r", rules, "--jobs", "3", stdin=events.read_bytes())
    assert stdin.stdout == run_sereno(events, "-r", rules, "--jobs", "1").stdout


def arguments(file: str, jobs: int | None = None, **flags: bool) -> argparse.Namespace:
    options = {"strict": False, "notices": False, **flags}
    return argparse.Namespace(file=file, jobs=jobs, **options)


def test_how_many_jobs_a_run_takes(tmp_path: Path) -> None:
    rules = load_default_rules()
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(json_lines(event()))
    with big.open("wb") as sparse:
        sparse.truncate(MIN_BYTES_FOR_JOBS)
    assert jobs_for(arguments(str(small)), rules) == 1
    assert jobs_for(arguments(str(big)), rules) == available_cores()
    assert jobs_for(arguments(str(small), jobs=3), rules) == 3
    assert jobs_for(arguments("-", jobs=3), rules) == 1
    assert jobs_for(arguments(str(big), jobs=3, strict=True), rules) == 1
    assert jobs_for(arguments(str(big), jobs=3, notices=True), rules) == 1
    assert jobs_for(arguments(str(tmp_path / "missing")), rules) == 1


def test_rules_that_inhibit_across_services_take_one_job() -> None:
    inhibited = "    missing_after: 3m\n    inhibited_by: [silent]\n    equal: [server]\n"
    text = RULES.replace("    missing_after: 3m\n", inhibited)
    across = parse_rules(text, "rules.yaml")
    within = parse_rules(text.replace("equal: [server]", "equal: [service, server]"), "rules.yaml")
    assert jobs_for(arguments("file", jobs=4), across) == 1
    assert jobs_for(arguments("file", jobs=4), within) == 4


@pytest.mark.parametrize("value", ["0", "-2", "x", "257"])
def test_a_bad_number_of_jobs_is_a_usage_error(files: tuple[Path, Path], value: str) -> None:
    events, _ = files
    result = run_sereno(events, "--jobs", value)
    assert result.returncode == 2
    assert "expected a number of jobs from 1 to 256" in result.stderr
    assert "Traceback" not in result.stderr


class _Boom:
    """A job that stops as `how` says, as soon as it starts."""

    def __init__(self, how: str) -> None:
        self._how = how

    def lines(self, handed: Connection) -> Any:
        if self._how == "raises":
            raise OSError("cannot evaluate: Input/output error")
        if self._how == "is killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if self._how == "garbles":
            return iter([{"keys": "not a list"}])
        os._exit(3)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("raises", "job 2 of 2: cannot evaluate: Input/output error"),
        ("dies", "job 2 of 2 stopped unexpectedly (exit status 3)"),
        ("is killed", "job 2 of 2 stopped unexpectedly (killed by SIGKILL)"),
        ("garbles", "job 2 of 2 sent what is not a job's message: "),
    ],
)
def test_another_job_that_stops_is_told_in_one_line(how: str, message: str) -> None:
    other = _OtherJob(_Boom(how), 1, 2)  # type: ignore[arg-type]
    try:
        with pytest.raises(JobFailed, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
            other.lines()
    finally:
        other.stop()


class _Waiting:
    """A job that waits for its first part."""

    def lines(self, handed: Connection) -> Any:
        handed.recv_bytes()
        return iter([])


def test_the_other_jobs_end_when_the_first_one_is_gone() -> None:
    """Each forked job closes the copies of every job's pipes the fork gave it: otherwise a
    job would wait for ever on a pipe that it, or a job forked after it, holds open."""
    first = _OtherJob(_Waiting(), 1, 3)  # type: ignore[arg-type]
    second = _OtherJob(_Waiting(), 2, 3, [first])  # type: ignore[arg-type]
    try:
        for other in (first, second):
            other._hand.close()  # as the first job's death closes it
            other._process.join(timeout=30)
            assert other._process.exitcode == 0  # None: still waiting
            with pytest.raises(JobFailed, match="EOFError"):
                other.lines()
    finally:
        for other in (first, second):
            other.stop()


def test_every_service_is_one_jobs_and_the_first_job_takes_a_third_of_a_share() -> None:
    services = [f"svc{number}" for number in range(4000)]
    for count in (2, 3, 8):
        shares = Shares(count)
        taken = [shares.job_of(service) for service in services]
        assert set(taken) == set(range(count))
        first = sum(1 for job in taken if job == 0) / len(services)
        assert first == pytest.approx(1 / (3 * count), abs=0.02)
        for job in range(1, count):
            expected = (1 - 1 / (3 * count)) / (count - 1)
            assert taken.count(job) / len(services) == pytest.approx(expected, abs=0.03)
    bucket = zlib.crc32(b"svc7") % BUCKETS  # the same in every process: not `hash`
    assert Shares(2).job_of("svc7") == (0 if bucket < BUCKETS // 6 else 1)


def test_a_window_splits_into_each_jobs_events_in_order_with_their_places() -> None:
    window = Window(T0)
    window.events = [
        Event(f"srv{n}", f"svc{n % 5}", "Load5mAvg", n, T0 + n, True) for n in range(40)
    ]
    shares = Shares(3)
    parts = shares.split(window)
    assert [part.start for part in parts] == [T0] * 3
    placed = sorted(
        (place, event)
        for part in parts
        for place, event in zip(part.places or [], part.events, strict=True)
    )
    assert [event for _, event in placed] == window.events
    for job, part in enumerate(parts):
        assert all(shares.job_of(event.service) == job for event in part.events)
        assert part.places == sorted(part.places or [])


def test_a_part_is_handed_in_pieces_and_taken_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_module, "PIECE_EVENTS", 10)
    with_rack: Any = event_type(["rack"])
    parts: list[Window] = []
    for count in (25, 20, 0, 3):
        part = Window(T0 + 60 * len(parts))
        part.events = [
            with_rack(f"srv{n}", "svc", "Temperature", n, part.start + n % 60, True, rack=n)
            for n in range(count)
        ]
        part.places = list(range(0, 2 * count, 2))
        parts.append(part)
    parts[1].events[15] = with_rack("srv", "svc", "Temperature", 1, T0 + 60, True, rack=2**70)
    receive, send = multiprocessing.Pipe(duplex=False)
    pieces = [piece for part in parts for piece in _pieces(part)]
    assert len(pieces) == 3 + 2 + 1 + 1
    for piece in [*pieces, job_module._END]:
        send.send_bytes(piece)
    taken = list(_parts(receive, _EventsDecoder(with_rack)))
    assert [(p.start, p.events, p.places) for p in taken] == [
        (p.start, p.events, p.places) for p in parts
    ]
