"""Maintenance windows: which alerts they cover and when (across a clock change), how the
config file writes them, and what `sereno check --config` says of them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sereno.notify.config import load_config
from sereno.notify.maintenance import MaintenanceWindow, in_maintenance
from sereno.notify.matchers import parse_matcher
from sereno.notify.timeintervals import UTC, IntervalSpec, Span, TimeInterval, Times
from sereno.rules.rulefmt import load_default_rules

from conftest import DATA, run_sereno

RULES = load_default_rules()
MADRID = ZoneInfo("Europe/Madrid")
GOOD = DATA / "configs" / "maintenance-windows.good.yaml"

# Sundays from 01:00 to 04:00 in Madrid; on 2026-10-25 the clocks go back at 03:00 CEST to
# 02:00 CET, so that night the window lasts four hours, 23:00 to 03:00 UTC
SUNDAY_NIGHTS = TimeInterval(
    "sunday-nights",
    (IntervalSpec(times=(Times(60, 4 * 60),), weekdays=(Span(0, 0),), location=MADRID),),
)
INBOX = {"alertname": "Disk consumption exceeds 90%", "service": "InboxService", "server": "i1"}


def at(text: str) -> float:
    """`2026-10-25 02:30` UTC, in Unix seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def window(
    name: str, *matchers: str, intervals: tuple[TimeInterval, ...] = (SUNDAY_NIGHTS,)
) -> MaintenanceWindow:
    return MaintenanceWindow(name, tuple(parse_matcher(text) for text in matchers), intervals)


def covered(
    windows: tuple[MaintenanceWindow, ...], labels: dict[str, str], *texts: str
) -> list[str | None]:
    """The name of the window covering `labels` at each UTC time, None where none does."""
    found = (in_maintenance(windows, labels, at(text)) for text in texts)
    return [match.name if match is not None else None for match in found]


def test_a_weekly_window_follows_the_clocks_of_its_location_across_the_autumn_change() -> None:
    inbox = (window("inbox", "service=InboxService"),)
    # a week before, in summer time: 01:00 to 04:00 CEST is 23:00 to 02:00 UTC
    assert covered(inbox, INBOX, "2026-10-17 22:59", "2026-10-17 23:00", "2026-10-18 01:59") == [
        None,
        "inbox",
        "inbox",
    ]
    assert covered(inbox, INBOX, "2026-10-18 02:00", "2026-10-18 02:30") == [None, None]
    # the night the clocks go back: 01:00 CEST to 04:00 CET is 23:00 to 03:00 UTC
    assert covered(inbox, INBOX, "2026-10-24 22:59", "2026-10-24 23:00") == [None, "inbox"]
    assert covered(inbox, INBOX, "2026-10-25 00:30", "2026-10-25 01:30") == ["inbox", "inbox"]
    assert covered(inbox, INBOX, "2026-10-25 02:30", "2026-10-25 02:59") == ["inbox", "inbox"]
    assert covered(inbox, INBOX, "2026-10-25 03:00") == [None]
    # a week after, in winter time: 01:00 to 04:00 CET is 00:00 to 03:00 UTC
    assert covered(inbox, INBOX, "2026-10-31 23:30", "2026-11-01 00:00") == [None, "inbox"]
    assert covered(inbox, INBOX, "2026-11-01 02:59", "2026-11-01 03:00") == ["inbox", None]


def test_a_window_covers_only_the_alerts_all_its_matchers_select() -> None:
    deploys = (window("deploys", "service=InboxService", "severity!=CRITICAL"),)
    during = "2026-10-25 00:30"
    assert covered(deploys, INBOX, during) == ["deploys"]
    assert covered(deploys, {**INBOX, "severity": "CRITICAL"}, during) == [None]
    assert covered(deploys, {**INBOX, "service": "FacebookRealtime"}, during) == [None]
    by_rule = (window("disks", "rule=~'Disk.*'", "server=~'i[0-9]'"),)
    assert covered(by_rule, INBOX, during) == ["disks"]


def test_the_first_window_in_force_is_the_one_found() -> None:
    never = TimeInterval("never", (IntervalSpec(years=(Span(2020, 2020),)),))
    always = TimeInterval("always", (IntervalSpec(),))
    windows = (
        window("past", "service=InboxService", intervals=(never,)),
        window("either", "service=InboxService", intervals=(never, SUNDAY_NIGHTS)),
        window("every-time", "service=InboxService", intervals=(always,)),
    )
    assert covered(windows, INBOX, "2026-10-25 00:30", "2026-10-26 12:00") == [
        "either",
        "every-time",
    ]
    assert in_maintenance((), INBOX, at("2026-10-25 00:30")) is None


def test_the_config_file_names_each_windows_matchers_and_time_intervals() -> None:
    loaded = load_config(GOOD, RULES)
    deploys, checks, gone = loaded.time_intervals
    inbox, patches = loaded.maintenance_windows
    assert inbox == MaintenanceWindow(
        "inbox-deploys",
        (parse_matcher("service=InboxService"), parse_matcher("severity!=CRITICAL")),
        (checks, deploys),  # by name
        "InboxService is deployed on tuesday nights; only CRITICAL alerts are told then",
    )
    assert patches == MaintenanceWindow(
        "old-patch-nights", (parse_matcher('server=~"db.*"'),), (gone,)
    )


def test_check_lists_each_window_and_its_next_periods_its_intervals_merged() -> None:
    result = run_sereno("check", "--config", GOOD)
    assert result.returncode == 0, result.stderr
    # the tuesdays of march 2030 are the 5th, 12th, 19th and 26th; deploys from 02:00 to
    # 03:00 and the checks after them until 03:30 make one period of an hour and a half
    assert result.stdout.endswith(
        '  maintenance window inbox-deploys: service="InboxService", severity!="CRITICAL";'
        " during checks-after-deploys, deploys, next:\n"
        "    Tue 2030-03-05 02:00 +01:00, for 1h30m\n"
        "    Tue 2030-03-12 02:00 +01:00, for 1h30m\n"
        "    Tue 2030-03-19 02:00 +01:00, for 1h30m\n"
        '  maintenance window old-patch-nights: server=~"db.*"; during years-gone-by, next:\n'
        "    none in the next 5 years\n"
    )
    assert f"{GOOD}: valid, 1 receiver, 3 time intervals, 2 maintenance windows\n" in result.stdout
