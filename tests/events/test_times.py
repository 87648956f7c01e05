"""Event time that one source cannot hijack: timestamps ahead of the clock, before 1970 or
in minutes evaluated already are rejected with a reason; one source far ahead of the rest
of the fleet is held back and rejected instead of making every other source late; numbers
that cannot be kept are rejected per record. The same in files and in the service."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sereno.engine.windows import Window, Windows
from sereno.events.reader import EventReader, RecordError
from sereno.events.schema import Event
from sereno.events.times import EventTimes

from conftest import SAMPLE, Server, event, json_lines, raw_event, run_sereno, sample_events

T0 = 1476057600  # 2016-10-10 00:00:00 UTC, the sample's first minute
NOW = 1796000000.0  # 2026-11-30 00:53:20 UTC


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        (1.7976931348623157e308, "1.798e+308 is 5.7e+300 years ahead of the clock"),
        (1e20, "1e+20 is 3.2e+12 years ahead of the clock"),
        (-1e20, "-1e+20 is before 1970: expected Unix seconds"),
        (-1, "-1 is before 1970: expected Unix seconds"),
        (2e9, "2000000000 is 6 years ahead of the clock (2026-11-30 00:53:20 UTC)"),
        (
            1764400000000,
            "is 55,854 years ahead of the clock (2026-11-30 00:53:20 UTC): is it in milliseconds?",
        ),
        (1764400000000000, "ahead of the clock (2026-11-30 00:53:20 UTC): is it in microseconds?"),
        (NOW + 301, "1796000301 is 5 minutes ahead of the clock"),
    ],
)
def test_timestamps_that_cannot_be_taken_say_why(timestamp: float, reason: str) -> None:
    problem = EventTimes(now=NOW).problem(timestamp)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize("timestamp", [0, T0, NOW, NOW + 300])
def test_old_data_and_a_clock_a_little_fast_are_taken(timestamp: float) -> None:
    assert EventTimes(now=NOW).problem(timestamp) is None


def test_a_minute_evaluated_already_is_late() -> None:
    problem = EventTimes(now=NOW, evaluated_before=T0 + 60).problem(T0 + 59)
    assert problem == (
        "late: 1476057659 is in a minute evaluated already "
        "(every minute before 2016-10-10 00:01:00 UTC is)"
    )


AT_NOW = EventTimes(now=NOW)


def read(data: bytes, times: EventTimes = AT_NOW) -> tuple[list[Event], list[str]]:
    errors: list[RecordError] = []
    reader = EventReader(io.BufferedReader(io.BytesIO(data)), "in", errors.append, times=times)
    return reader.read_all(), [str(error) for error in errors]


def test_the_reader_rejects_each_bad_timestamp_and_number_and_keeps_the_rest() -> None:
    good = event(server="a", timestamp=T0)
    data = json_lines(
        good,
        event(server="b", timestamp=T0 * 1000),
        event(server="c", value=2**64),
        event(server="d", value=-(2**63) - 1),
        event(server="e", timestamp=-1),
        good,
    )
    events, errors = read(data)
    assert [e.server for e in events] == ["a", "a"]
    assert errors == [
        "in:2: field 'timestamp': 1476057600000 is 46,717 years ahead of the clock "
        "(2026-11-30 00:53:20 UTC): is it in milliseconds?",
        "in:3: field 'value': expected a finite number, got a number out of range",
        "in:4: field 'value': expected a finite number, got a number out of range",
        "in:5: field 'timestamp': -1 is before 1970: expected Unix seconds",
    ]


def test_the_largest_integers_that_can_be_kept_are_taken() -> None:
    events, errors = read(json_lines(event(value=2**63 - 1), event(value=-(2**63))))
    assert errors == []
    assert [e.value for e in events] == [2**63 - 1, -(2**63)]


def test_json_nested_a_thousand_deep_is_a_clean_error() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    assert read(deep) == (
        [],
        ["in: not valid JSON: nested too deeply; the rest of the input was skipped"],
    )
    line = json.dumps(event()).encode() + b"\n" + b'{"a":' + deep + b"}\n"
    events, errors = read(line)
    assert len(events) == 1
    assert errors == ["in:2: not valid JSON: nested too deeply"]


# --- the watermark follows the fleet -----------------------------------------------------


class Misfits:
    def __init__(self) -> None:
        self.late: list[int] = []
        self.ahead: list[tuple[int, float]] = []

    def late_at(self, index: int) -> None:
        self.late.append(index)

    def ahead_at(self, index: int, fleet_time: float) -> None:
        self.ahead.append((index, fleet_time))


class Told:
    """The `Misfits` protocol of the windows, for one batch."""

    def __init__(self, misfits: Misfits) -> None:
        self._misfits = misfits

    def late(self, index: int) -> None:
        self._misfits.late_at(index)

    def ahead(self, index: int, fleet_time: float) -> None:
        self._misfits.ahead_at(index, fleet_time)


def load(server: str, timestamp: float) -> Event:
    return Event(**event(server=server, timestamp=timestamp))


def feed(windows: Windows, events: list[Event], misfits: Misfits) -> list[Window]:
    closed = list(windows.extend(events, Told(misfits)))
    return closed + list(windows.close_all())


def minutes(windows: list[Window]) -> list[tuple[int, list[str]]]:
    return [(w.start - T0, sorted(e.server for e in w.events)) for w in windows]


def test_one_server_far_ahead_does_not_make_the_fleet_late() -> None:
    fleet = [load(server, T0 + 60 * minute + 5) for minute in range(4) for server in "abc"]
    errant = load("z", T0 + 3600)
    misfits = Misfits()
    closed = feed(Windows(), [*fleet[:4], errant, *fleet[4:]], misfits)
    assert minutes(closed) == [(60 * m, ["a", "b", "c"]) for m in range(4)]
    assert misfits.late == []
    assert misfits.ahead == [(4, T0 + 180 + 5)]  # rejected once its minute, T0 + 60, closed


def test_a_gap_that_the_fleet_follows_is_taken() -> None:
    before = [load(server, T0 + 5) for server in "abc"]
    after = [load(server, T0 + 7200 + 5) for server in "abc"]
    misfits = Misfits()
    closed = feed(Windows(), before + after, misfits)
    assert minutes(closed) == [(0, ["a", "b", "c"]), (7200, ["a", "b", "c"])]
    assert (misfits.late, misfits.ahead) == ([], [])


def test_a_stream_of_one_server_is_never_held_back() -> None:
    misfits = Misfits()
    closed = feed(Windows(), [load("a", T0), load("a", T0 + 86400)], misfits)
    assert minutes(closed) == [(0, ["a"]), (86400, ["a"])]
    assert (misfits.late, misfits.ahead) == ([], [])


def test_what_is_still_held_at_the_end_of_the_input_is_rejected() -> None:
    misfits = Misfits()
    closed = feed(Windows(), [load("a", T0), load("b", T0 + 1), load("z", T0 + 3600)], misfits)
    assert minutes(closed) == [(0, ["a", "b"])]
    assert misfits.ahead == [(2, T0 + 1)]


def test_events_held_back_that_the_fleet_follows_are_late_no_more_than_the_rest() -> None:
    """Held events are taken in time order once followed, with the others of the batch."""
    first = [load("a", T0), load("b", T0 + 1)]
    jump = [load("a", T0 + 3600), load("b", T0 + 3610), load("a", T0 + 3620)]
    misfits = Misfits()
    closed = feed(Windows(), first + jump, misfits)
    assert minutes(closed) == [(0, ["a", "b"]), (3600, ["a", "a", "b"])]
    assert (misfits.late, misfits.ahead) == ([], [])


# --- the same in files ---------------------------------------------------------------------


def test_in_a_file_one_server_in_milliseconds_makes_no_one_else_late(
    write_file: Callable[[str, bytes | str], Path],
) -> None:
    expected = run_sereno(SAMPLE).stdout
    records = sample_events()
    records[5] = {**records[5], "timestamp": records[5]["timestamp"] * 1000}
    path = write_file("ms.json", json.dumps(records))
    result = run_sereno(path)
    assert result.returncode == 1
    assert result.stdout == expected
    assert f"{path}[5]: field 'timestamp': 1476057605000 is " in result.stderr
    assert ": is it in milliseconds?; record skipped" in result.stderr
    assert "1 rejected" in result.stderr
    assert "late" not in result.stderr


def test_in_a_file_one_server_an_hour_ahead_is_rejected_and_no_one_is_late(
    write_file: Callable[[str, bytes | str], Path],
) -> None:
    expected = run_sereno(SAMPLE).stdout
    records = sample_events()
    records[5] = {**records[5], "timestamp": records[5]["timestamp"] + 3600}
    path = write_file("ahead.json", json.dumps(records))
    result = run_sereno(path)
    assert result.returncode == 1
    assert result.stdout == expected
    assert (
        f"{path}[5]: field 'timestamp': 1476061205 is 58 minutes ahead of the rest of the "
        "fleet (2016-10-10 00:02:00 UTC); record skipped"
    ) in result.stderr


def test_in_a_file_a_gap_in_the_data_is_taken(
    write_file: Callable[[str, bytes | str], Path],
) -> None:
    records = sample_events()
    for record in records[30:]:
        record["timestamp"] += 7200
    result = run_sereno(write_file("gap.json", json.dumps(records)))
    assert result.returncode == 0, result.stderr
    assert "7 alerts" in result.stderr


def test_max_clock_skew_is_checked_and_used(write_file: Callable[[str, bytes | str], Path]) -> None:
    records = sample_events()
    records[5] = {**records[5], "timestamp": records[5]["timestamp"] + 3600}
    path = write_file("ahead.json", json.dumps(records))
    wide = run_sereno(path, "--max-clock-skew", "7200")  # takes it: the others are late
    assert "0 rejected, 61 late" in wide.stderr
    bad = run_sereno(path, "--max-clock-skew", "soon")
    assert bad.returncode == 2
    assert "--max-clock-skew: expected a number of seconds, got 'soon'" in bad.stderr


# --- the same in the service -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "timestamp", "reason"),
    [
        ("1", "1.7976931348623157e308", "years ahead of the clock"),
        ("1", "1e20", "years ahead of the clock"),
        ("1", "-1e20", "before 1970"),
        ("1", "2e9", "6 years ahead of the clock"),
        ("1", "1476057600000", "is it in milliseconds?"),
        ("1", "-1", "before 1970"),
        ("1", "-1e9", "before 1970"),
        ("18446744073709551616", "1476057600", "got a number out of range"),
    ],
)
def test_the_service_rejects_a_bad_record_in_its_answer_and_goes_on(
    start_server: Callable[..., Server], value: str, timestamp: str, reason: str
) -> None:
    server = start_server()
    good = raw_event(5, T0 + 10)
    answer = server.post(f"[{good},{raw_event(value, timestamp)}]".encode())
    assert answer.status_code == 202
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"][0]["index"] == 1
    assert reason in body["errors"][0]["reason"]
    # the good events are evaluated: the next minute's event closes the first one
    server.post_lines(event(server="a", service="S", value=5, timestamp=T0 + 100))
    alerts = server.alerts_until(lambda alerts: len(alerts) > 0)
    assert [(a["service"], a["state"]) for a in alerts] == [("S", "firing")]
    assert server.get("/readyz").status_code == 200
    server.stop()
    again = start_server()  # on the same state file
    assert again.get("/readyz").status_code == 200


def test_the_service_tells_a_client_its_events_are_late(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    server.post_lines(event(server="a", timestamp=T0), event(server="a", timestamp=T0 + 200))
    server.metric_until("sereno_windows_evaluated_total 1.0")
    answer = server.post(raw_event(1, 0).encode()).json()
    assert answer["rejected"] == 1
    assert answer["errors"][0]["reason"] == (
        "late: 0 is in a minute evaluated already (every minute before 2016-10-10 00:01:00 UTC is)"
    )


def test_the_service_holds_one_server_ahead_of_the_fleet_and_counts_it(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    records = sample_events()
    records[5] = {**records[5], "timestamp": records[5]["timestamp"] + 86400}
    answer = server.post(json_lines(*records), "application/x-ndjson")
    assert answer.json()["rejected"] == 0  # ahead of the fleet is known only later
    page = server.metric_until("sereno_events_ahead_of_fleet_total 1.0")
    assert "sereno_events_ahead_of_fleet_total 1.0" in page
    assert "sereno_late_events_total 0.0" in page
    alerts = server.alerts_until(lambda alerts: len(alerts) >= 2)
    assert {a["rule"] for a in alerts} >= {"5 min load average exceeds 4.0"}
    stderr = server.stop()
    assert "sereno: rejected an event of server " in stderr
    assert "1 day ahead of the rest of the fleet" not in stderr  # 24 hours, in hours
    assert "hours ahead of the rest of the fleet" in stderr
