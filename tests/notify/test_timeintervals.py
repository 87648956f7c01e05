"""Time intervals: when each field holds, the periods ahead (across clock changes), how the
config file writes them, the quiet hours they give receivers, and `sereno check --config`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sereno.engine.alerts import AlertKey, ServerAlert
from sereno.engine.lifecycle import Episode, State
from sereno.notify.config import ConfigError, NotifyConfig, parse_config
from sereno.notify.planner import Planner
from sereno.notify.timeintervals import (
    HORIZON,
    UTC,
    IntervalSpec,
    Span,
    TimeInterval,
    Times,
    contains,
    next_occurrences,
)
from sereno.rules.rulefmt import load_default_rules

from conftest import DATA, run_sereno

RULES = load_default_rules()
MADRID = ZoneInfo("Europe/Madrid")
HOUR = 3600


def at(text: str, zone: ZoneInfo = UTC) -> float:
    """`2026-03-29 01:30` on the clocks of `zone`, in Unix seconds (the first such instant
    when the clocks are set back)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone).timestamp()


def interval(*specs: IntervalSpec) -> TimeInterval:
    return TimeInterval("test", specs)


def holds(spec: IntervalSpec, *texts: str) -> list[bool]:
    return [contains(interval(spec), at(text, spec.location)) for text in texts]


# --- each field ----------------------------------------------------------------------------


def test_times_include_their_start_and_not_their_end() -> None:
    spec = IntervalSpec(times=(Times(9 * 60, 17 * 60 + 30),))
    assert holds(spec, "2026-05-04 08:59", "2026-05-04 09:00", "2026-05-04 17:29") == [
        False,
        True,
        True,
    ]
    assert holds(spec, "2026-05-04 17:30") == [False]


def test_an_end_of_24_00_is_midnight_at_the_end_of_the_day() -> None:
    spec = IntervalSpec(times=(Times(22 * 60, 1440),))
    assert holds(spec, "2026-05-04 21:59", "2026-05-04 22:00", "2026-05-04 23:59") == [
        False,
        True,
        True,
    ]
    assert holds(spec, "2026-05-05 00:00") == [False]


def test_weekdays_and_their_ranges_count_from_sunday() -> None:
    working_days = IntervalSpec(weekdays=(Span(1, 5),))  # monday:friday
    # 2026-05-03 is a sunday
    days = [f"2026-05-{day:02} 12:00" for day in range(3, 10)]
    assert holds(working_days, *days) == [False, True, True, True, True, True, False]
    weekend = IntervalSpec(weekdays=(Span(0, 0), Span(6, 6)))
    assert holds(weekend, *days) == [True, False, False, False, False, False, True]


def test_days_of_month_count_from_the_start_or_from_the_end() -> None:
    first_week = IntervalSpec(days_of_month=(Span(1, 5),))
    assert holds(first_week, "2026-02-01 00:00", "2026-02-05 23:59", "2026-02-06 00:00") == [
        True,
        True,
        False,
    ]
    last_three = IntervalSpec(days_of_month=(Span(-3, -1),))
    # February 2026 has 28 days, March 31
    assert holds(last_three, "2026-02-25 12:00", "2026-02-26 12:00", "2026-02-28 12:00") == [
        False,
        True,
        True,
    ]
    assert holds(last_three, "2026-03-28 12:00", "2026-03-29 12:00") == [False, True]
    from_the_first_to_the_last = IntervalSpec(days_of_month=(Span(10, -1),))
    assert holds(from_the_first_to_the_last, "2026-02-09 12:00", "2026-02-28 12:00") == [
        False,
        True,
    ]


def test_days_past_the_end_of_a_short_month_match_as_alertmanager_matches_them() -> None:
    # a range that starts after the month's last day matches nothing; one that ends after it
    # stops there
    assert holds(IntervalSpec(days_of_month=(Span(30, 31),)), "2026-02-28 12:00") == [False]
    assert holds(IntervalSpec(days_of_month=(Span(25, 31),)), "2026-02-28 12:00") == [True]


def test_months_and_years() -> None:
    spring = IntervalSpec(months=(Span(3, 5),))
    assert holds(spring, "2026-02-28 23:59", "2026-03-01 00:00", "2026-05-31 23:59") == [
        False,
        True,
        True,
    ]
    assert holds(spring, "2026-06-01 00:00") == [False]
    two_years = IntervalSpec(years=(Span(2026, 2027),))
    assert holds(two_years, "2025-12-31 23:59", "2026-01-01 00:00", "2027-12-31 23:59") == [
        False,
        True,
        True,
    ]


def test_every_field_of_a_spec_must_match_and_any_spec_of_an_interval() -> None:
    monday_mornings = IntervalSpec(weekdays=(Span(1, 1),), times=(Times(0, 12 * 60),))
    assert holds(monday_mornings, "2026-05-04 11:00", "2026-05-04 13:00") == [True, False]
    assert holds(monday_mornings, "2026-05-05 11:00") == [False]
    either = interval(monday_mornings, IntervalSpec(days_of_month=(Span(5, 5),)))
    assert [contains(either, at(text)) for text in ("2026-05-04 11:00", "2026-05-05 13:00")] == [
        True,
        True,
    ]


def test_an_empty_spec_always_holds() -> None:
    assert holds(IntervalSpec(), "1999-12-31 23:59", "2026-05-04 12:00") == [True, True]


def test_times_are_read_on_the_clocks_of_the_location() -> None:
    office = IntervalSpec(times=(Times(9 * 60, 18 * 60),), location=MADRID)
    # 08:30 UTC in winter is 09:30 in Madrid; 16:30 UTC in summer is 18:30 there
    assert contains(interval(office), at("2026-01-12 08:30")) is True
    assert contains(interval(office), at("2026-07-13 16:30")) is False


# --- the periods ahead ---------------------------------------------------------------------


def test_a_night_across_the_spring_clock_change_is_an_hour_shorter() -> None:
    # Madrid, 2026-03-29: at 02:00 the clocks jump to 03:00
    nights = interval(IntervalSpec(times=(Times(60, 4 * 60),), location=MADRID))
    assert next_occurrences(nights, at("2026-03-28 12:00", MADRID), 2) == [
        (at("2026-03-29 00:00"), at("2026-03-29 02:00")),  # 01:00 CET to 04:00 CEST: 2h
        (at("2026-03-29 23:00"), at("2026-03-30 02:00")),
    ]
    assert contains(nights, at("2026-03-29 01:30")) is True  # 03:30 CEST


def test_a_time_the_spring_clock_change_skips_starts_when_the_clocks_jump() -> None:
    from_half_past_two = interval(IntervalSpec(times=(Times(150, 5 * 60),), location=MADRID))
    ((start, end),) = next_occurrences(from_half_past_two, at("2026-03-29 00:00", MADRID), 1)
    assert (start, end) == (at("2026-03-29 01:00"), at("2026-03-29 03:00"))  # 03:00 to 05:00


def test_a_night_across_the_autumn_clock_change_is_an_hour_longer() -> None:
    # Madrid, 2026-10-25: at 03:00 the clocks go back to 02:00
    nights = interval(IntervalSpec(times=(Times(60, 4 * 60),), location=MADRID))
    ((start, end),) = next_occurrences(nights, at("2026-10-24 12:00", MADRID), 1)
    assert (start, end) == (at("2026-10-24 23:00"), at("2026-10-25 03:00"))  # CEST to CET: 4h


def test_a_time_the_autumn_clock_change_shows_twice_holds_twice() -> None:
    quarter_past_two = interval(IntervalSpec(times=(Times(135, 165),), location=MADRID))
    assert next_occurrences(quarter_past_two, at("2026-10-25 00:00", MADRID), 2) == [
        (at("2026-10-25 00:15"), at("2026-10-25 00:45")),  # 02:15 to 02:45 CEST
        (at("2026-10-25 01:15"), at("2026-10-25 01:45")),  # and again in CET
    ]


def test_adjacent_periods_are_merged_and_a_period_under_way_starts_now() -> None:
    nights = interval(
        IntervalSpec(times=(Times(22 * 60, 1440),)), IntervalSpec(times=(Times(0, 6 * 60),))
    )
    assert next_occurrences(nights, at("2026-05-04 12:00"), 2) == [
        (at("2026-05-04 22:00"), at("2026-05-05 06:00")),
        (at("2026-05-05 22:00"), at("2026-05-06 06:00")),
    ]
    weekends = interval(IntervalSpec(weekdays=(Span(6, 6),)), IntervalSpec(weekdays=(Span(0, 0),)))
    assert next_occurrences(weekends, at("2026-05-03 12:00"), 2) == [
        (at("2026-05-03 12:00"), at("2026-05-04 00:00")),
        (at("2026-05-09 00:00"), at("2026-05-11 00:00")),
    ]


def test_the_search_ahead_is_bounded() -> None:
    past = interval(IntervalSpec(years=(Span(2020, 2021),)))
    assert next_occurrences(past, at("2026-05-04 12:00"), 3) == []
    last_year = interval(IntervalSpec(years=(Span(2026, 2026),), months=(Span(12, 12),)))
    assert next_occurrences(last_year, at("2026-05-04 12:00"), 3) == [
        (at("2026-12-01 00:00"), at("2027-01-01 00:00"))
    ]
    start = at("2026-05-04 12:00")
    assert next_occurrences(interval(IntervalSpec()), start, 3) == [(start, start + HORIZON)]
    leap_days = interval(IntervalSpec(months=(Span(2, 2),), days_of_month=(Span(29, 29),)))
    assert next_occurrences(leap_days, start, 3) == [
        (at("2028-02-29 00:00"), at("2028-03-01 00:00"))
    ]  # 2032 is past the five years ahead


# --- the config file -----------------------------------------------------------------------


def config(text: str) -> NotifyConfig:
    return parse_config(text, "sereno.yaml", RULES)


QUIET_HOURS = """
time_intervals:
  - name: office
    time_intervals:
      - weekdays: ['Monday:friday']
        times: [{start_time: '09:00', end_time: '17:30'}]
        location: Europe/Madrid
  - name: holidays
    time_intervals:
      - {months: [december], days_of_month: ['24:26', -1]}
      - {months: ['1'], days_of_month: ['1'], years: ['2026:2027']}
defaults: {mute_time_intervals: [holidays]}
receivers:
  - {name: email, type: webhook, url: "http://x/email", active_time_intervals: [office]}
  - {name: chat, type: webhook, url: "http://x/chat"}
"""


def test_intervals_are_read_as_alertmanager_writes_them() -> None:
    # 17:30 and 1:5 are numbers in base 60 to YAML 1.1: they are read as written
    loaded = config(QUIET_HOURS)
    office, holidays = loaded.time_intervals
    assert office == TimeInterval(
        "office", (IntervalSpec((Times(540, 1050),), (Span(1, 5),), location=MADRID),)
    )
    assert holidays.specs == (
        IntervalSpec(days_of_month=(Span(24, 26), Span(-1, -1)), months=(Span(12, 12),)),
        IntervalSpec(days_of_month=(Span(1, 1),), months=(Span(1, 1),), years=(Span(2026, 2027),)),
    )


def test_receivers_take_their_quiet_hours_or_those_of_defaults() -> None:
    with pytest.raises(ConfigError) as refused:
        config(QUIET_HOURS.replace('"http://x/chat"', '"http://x/chat", mute_time_intervals: []'))
    assert refused.value.problems == [
        "sereno.yaml:15:76: receiver 'chat': key 'mute_time_intervals': "
        "expected a non-empty list of names"
    ]
    loaded = config(QUIET_HOURS)
    email, chat = loaded.receivers
    office, holidays = loaded.time_intervals
    assert (email.active_time_intervals, email.mute_time_intervals) == ((office,), (holidays,))
    assert (chat.active_time_intervals, chat.mute_time_intervals) == ((), (holidays,))


# --- the receivers' quiet hours ------------------------------------------------------------


def episode(started: int, state: State = State.FIRING) -> Episode:
    alert = ServerAlert(
        "Disk consumption exceeds 90%", "HIGH", started, "DiskUsedPercentage", 0.95, "web1", "web"
    )
    return Episode(
        AlertKey(alert.rule, "web", "web1"),
        "HIGH",
        state,
        started,
        started,
        0.95,
        1,
        alert,
        fired=started,
        notified_at=started,
        changed_at=started,
        tell="fired" if state is State.FIRING else "resolved",
    )


def test_a_receiver_hears_nothing_in_its_quiet_hours_while_another_does() -> None:
    loaded = config(QUIET_HOURS)
    planner = Planner(loaded, RULES)
    monday_morning = int(at("2026-05-04 10:00", MADRID))
    monday_night = int(at("2026-05-04 23:00", MADRID))
    christmas_morning = int(at("2026-12-25 10:00", MADRID))  # a friday
    told = {
        minute: [name for name, _ in planner.for_changes([episode(minute)])]
        for minute in (monday_morning, monday_night, christmas_morning)
    }
    assert told == {
        monday_morning: ["email", "chat"],
        monday_night: ["chat"],  # outside office hours
        christmas_morning: [],  # muted for both
    }
    resolved = planner.for_changes([episode(monday_night, State.RESOLVED)])
    assert [(name, notice.status) for name, notice in resolved] == [("chat", "resolved")]


def test_reminders_due_in_quiet_hours_are_not_sent_and_not_sent_later() -> None:
    loaded = config(QUIET_HOURS)
    planner = Planner(loaded, RULES)
    fired = int(at("2026-05-04 15:00", MADRID))  # reminded every 4h: 19:00, 23:00, 03:00...
    reminded = [
        (name, datetime.fromtimestamp(notice.at, MADRID).strftime("%H:%M"))
        for minute in range(fired + 60, fired + 20 * HOUR, 60)
        for name, notice in planner.repeats([episode(fired)], minute, minute - 60)
    ]
    assert reminded == [("chat", "19:00"), ("chat", "23:00"), ("chat", "03:00"), ("chat", "07:00")]


# --- sereno check --------------------------------------------------------------------------


def test_check_lists_quiet_hours_and_when_each_interval_holds_next() -> None:
    good = DATA / "configs" / "clock-changes.good.yaml"
    result = run_sereno("check", "--config", good)
    assert result.returncode == 0, result.stderr
    # the last sunday of march 2030 is the 31st, of october the 27th: the clocks change then
    assert result.stdout.endswith(
        f"{good}: valid, 1 receiver, 2 time intervals\n"
        "  ops (webhook): https://hooks.example.com/sereno\n"
        "    every severity; repeated every 4h; muted during clock-change-nights, years-gone-by\n"
        "  time interval clock-change-nights, next:\n"
        "    Sun 2030-03-31 01:00 +01:00, for 2h\n"
        "    Sun 2030-10-27 01:00 +02:00, for 4h\n"
        "  time interval years-gone-by, next:\n"
        "    none in the next 5 years\n"
    )
