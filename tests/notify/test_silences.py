"""Silences and the silence book, on invented times: a silence's states across its start, end
and expiry, which alerts the active ones silence, which ended in a span of time, pruning after
the retention, ids from an injected function, and every message a bad silence is refused with."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgspec
import pytest

from sereno.notify.config import parse_config
from sereno.notify.matchers import Matcher, parse_matcher
from sereno.notify.planner import Planner
from sereno.notify.silences import (
    DEFAULT_RETENTION,
    MAX_TEXT_LENGTH,
    Silence,
    SilenceBook,
    SilenceError,
    UnknownSilence,
    new_silence_id,
    parse_silence_duration,
    state,
)
from sereno.notify.silencing import Silences
from sereno.rules.rulefmt import load_default_rules

from disk_alerts import change

T0 = 1476057600.0  # 2016-10-10T00:00:00Z
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
INBOXES = (parse_matcher("service=InboxService"), parse_matcher('server=~"inbox_0[12]"'))
INBOX_01 = {"alertname": "Disk full", "severity": "HIGH", "service": "InboxService"}
INBOX_01 |= {"server": "inbox_01"}
MAIL_01 = {"alertname": "Disk full", "severity": "HIGH", "service": "Mail", "server": "mail_01"}


def numbered_ids() -> Callable[[], str]:
    """Ids s1, s2, ... so that tests know which silence is which."""
    numbers: Iterator[int] = iter(range(1, 1000))
    return lambda: f"s{next(numbers)}"


def new_book(retention: float = DEFAULT_RETENTION) -> SilenceBook:
    return SilenceBook(retention=retention, new_id=numbered_ids())


def add(
    book: SilenceBook,
    starts_at: float,
    ends_at: float,
    now: float,
    matchers: tuple[Matcher, ...] = INBOXES,
) -> Silence:
    return book.add(
        matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by="ops@example.com",
        comment="replacing inbox disks",
        now=now,
    )


def silence(**changes: object) -> Silence:
    fields: dict[str, object] = {
        "id": "s1",
        "matchers": INBOXES,
        "starts_at": T0,
        "ends_at": T0 + HOUR,
        "created_by": "ops@example.com",
        "comment": "replacing inbox disks",
        "updated_at": T0,
    }
    fields.update(changes)
    return Silence(**fields)  # type: ignore[arg-type]


def test_a_silence_is_pending_then_active_then_expired() -> None:
    planned = silence(starts_at=T0 + HOUR, ends_at=T0 + 2 * HOUR)
    assert state(planned, T0) == "pending"
    assert state(planned, T0 + HOUR - 0.5) == "pending"
    assert state(planned, T0 + HOUR) == "active"  # from its start, included
    assert state(planned, T0 + 2 * HOUR - 0.5) == "active"
    assert state(planned, T0 + 2 * HOUR) == "expired"  # to its end, excluded
    assert state(planned, T0 + 3 * HOUR) == "expired"


def test_an_expired_silence_ends_at_its_expiry() -> None:
    expired = silence(ends_at=T0 + 2 * HOUR, expired_at=T0 + HOUR)
    assert expired.ended_at == T0 + HOUR
    assert state(expired, T0 + HOUR - 1) == "active"
    assert state(expired, T0 + HOUR) == "expired"
    assert silence().ended_at == T0 + HOUR


def test_ids_come_from_the_injected_function_and_are_never_reused() -> None:
    given = iter(["dup", "dup", "fresh"])
    book = SilenceBook(new_id=lambda: next(given))
    assert add(book, T0, T0 + HOUR, now=T0).id == "dup"
    assert add(book, T0, T0 + HOUR, now=T0).id == "fresh"


def test_a_broken_id_function_is_a_bug_not_a_users_error() -> None:
    book = SilenceBook(new_id=lambda: "same")
    add(book, T0, T0 + HOUR, now=T0)
    with pytest.raises(RuntimeError, match="the id function gave 10 ids already in use"):
        add(book, T0, T0 + HOUR, now=T0)


def test_default_ids_are_long_and_random() -> None:
    ids = {new_silence_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(silence_id) >= 22 for silence_id in ids)  # 16 bytes, URL-safe base64


def test_no_default_id_reads_as_an_option_on_a_command_line() -> None:
    # One in 64 URL-safe base64 ids would start with "-": 4,000 ids hold one all but surely.
    assert not [
        silence_id
        for silence_id in (new_silence_id() for _ in range(4000))
        if silence_id.startswith("-")
    ]


def test_add_keeps_what_it_was_given() -> None:
    book = new_book()
    added = add(book, T0 + HOUR, T0 + 2 * HOUR, now=T0)
    assert added == silence(id="s1", starts_at=T0 + HOUR, ends_at=T0 + 2 * HOUR, updated_at=T0)
    assert book.get("s1") == added
    assert book.silences == (added,)


def test_a_silence_that_would_start_in_the_past_starts_now() -> None:
    book = new_book()
    added = add(book, T0 - DAY, T0 + HOUR, now=T0 + MINUTE)
    assert added.starts_at == T0 + MINUTE
    assert state(added, T0 + MINUTE) == "active"


def test_a_silence_that_already_ended_is_refused() -> None:
    book = new_book()
    with pytest.raises(SilenceError) as refused:
        add(book, T0 - HOUR, T0, now=T0)
    assert str(refused.value) == (
        "a silence must end in the future: it ends 2016-10-10T00:00:00Z,"
        " now is 2016-10-10T00:00:00Z"
    )
    assert book.silences == ()


def test_silencing_names_the_active_silences_that_match() -> None:
    book = new_book()
    add(book, T0, T0 + HOUR, now=T0)  # s1: the inboxes
    add(book, T0 + HOUR, T0 + 2 * HOUR, now=T0)  # s2: the inboxes, later
    add(book, T0, T0 + 2 * HOUR, now=T0, matchers=(parse_matcher("alertname='Disk full'"),))
    add(book, T0, T0 + HOUR, now=T0, matchers=(parse_matcher("service=Mail"),))  # s4
    assert book.silencing(INBOX_01, T0) == ["s1", "s3"]
    assert book.silencing(MAIL_01, T0) == ["s3", "s4"]
    assert book.silencing(INBOX_01, T0 + HOUR) == ["s3", "s2"]  # s3 started first
    assert book.silencing({"server": "inbox_02", "alertname": "Load"}, T0) == []
    assert book.silencing(INBOX_01 | {"server": "inbox_012"}, T0) == ["s3"]
    assert book.silencing(INBOX_01, T0 + 2 * HOUR) == []


def test_an_absent_label_is_matched_as_empty_in_a_silence() -> None:
    book = new_book()
    majority = {"alertname": "Most inboxes slow", "severity": "LOW", "service": "InboxService"}
    whole_service = (parse_matcher("service=InboxService"), parse_matcher('server=""'))
    add(book, T0, T0 + HOUR, now=T0, matchers=whole_service)
    assert book.silencing(majority, T0) == ["s1"]
    assert book.silencing(INBOX_01, T0) == []


def test_expire_ends_a_silence_now_and_keeps_it() -> None:
    book = new_book()
    add(book, T0, T0 + HOUR, now=T0)
    expired = book.expire("s1", T0 + 10 * MINUTE)
    assert expired.expired_at == T0 + 10 * MINUTE
    assert expired.updated_at == T0 + 10 * MINUTE
    assert expired.ends_at == T0 + HOUR  # as planned, for the record
    assert book.get("s1") == expired
    assert state(expired, T0 + 10 * MINUTE) == "expired"
    assert book.silencing(INBOX_01, T0 + 10 * MINUTE) == []


def test_a_pending_silence_can_be_expired() -> None:
    book = new_book()
    add(book, T0 + HOUR, T0 + 2 * HOUR, now=T0)
    assert state(book.expire("s1", T0), T0) == "expired"
    assert book.silencing(INBOX_01, T0 + HOUR) == []


def test_expiring_an_expired_silence_is_refused() -> None:
    book = new_book()
    add(book, T0, T0 + HOUR, now=T0)
    book.expire("s1", T0 + MINUTE)
    with pytest.raises(SilenceError) as refused:
        book.expire("s1", T0 + 2 * MINUTE)
    assert str(refused.value) == "silence 's1' has already expired, 2016-10-10T00:01:00Z"
    add(book, T0, T0 + HOUR, now=T0)
    with pytest.raises(SilenceError) as ended:
        book.expire("s2", T0 + HOUR)
    assert str(ended.value) == "silence 's2' has already expired, 2016-10-10T01:00:00Z"


def test_an_unknown_id_is_its_own_error() -> None:
    book = new_book()
    calls: tuple[Callable[[], Silence], ...] = (
        lambda: book.get("nope"),
        lambda: book.expire("nope", T0),
    )
    for call in calls:
        with pytest.raises(UnknownSilence) as refused:
            call()
        assert str(refused.value) == "no silence has the id 'nope'"
    assert issubclass(UnknownSilence, SilenceError)


def test_the_listing_groups_by_state_and_orders_each_group() -> None:
    book = new_book()
    add(book, T0, T0 + 3 * HOUR, now=T0)  # s1 active, ends last
    add(book, T0, T0 + HOUR, now=T0)  # s2 active, ends first
    add(book, T0 + 2 * HOUR, T0 + 3 * HOUR, now=T0)  # s3 pending, starts later
    add(book, T0 + HOUR, T0 + 3 * HOUR, now=T0)  # s4 pending, starts sooner
    add(book, T0, T0 + HOUR, now=T0)  # s5, expired first
    add(book, T0, T0 + HOUR, now=T0)  # s6, expired later
    book.expire("s5", T0 + MINUTE)
    book.expire("s6", T0 + 2 * MINUTE)
    listing = book.listing(T0 + 30 * MINUTE)
    assert [s.id for s in listing.active] == ["s2", "s1"]
    assert [s.id for s in listing.pending] == ["s4", "s3"]
    assert [s.id for s in listing.expired] == ["s6", "s5"]
    later = book.listing(T0 + HOUR)
    assert [s.id for s in later.active] == ["s1", "s4"]  # both end at +3h: then by id
    assert [s.id for s in later.pending] == ["s3"]
    assert [s.id for s in later.expired] == ["s2", "s6", "s5"]


def test_ended_between_gives_the_silences_that_stopped_in_the_span() -> None:
    book = new_book()
    add(book, T0, T0 + HOUR, now=T0)  # s1 ends at +1h
    add(book, T0, T0 + 2 * HOUR, now=T0)  # s2 expired at +30m
    add(book, T0 + HOUR, T0 + 2 * HOUR, now=T0)  # s3 expired while pending
    add(book, T0, T0 + 3 * HOUR, now=T0)  # s4 still active
    book.expire("s2", T0 + 30 * MINUTE)
    book.expire("s3", T0 + 40 * MINUTE)
    assert [s.id for s in book.ended_between(T0, T0 + HOUR)] == ["s2", "s1"]
    assert [s.id for s in book.ended_between(T0 + 30 * MINUTE, T0 + HOUR)] == ["s1"]  # (, ]
    assert [s.id for s in book.ended_between(T0, T0 + 30 * MINUTE)] == ["s2"]
    assert book.ended_between(T0 + HOUR, T0 + 2 * HOUR) == []
    assert [s.id for s in book.ended_between(T0 + 2 * HOUR, T0 + 3 * HOUR)] == ["s4"]


def test_a_silence_that_started_and_ended_within_the_span_is_given() -> None:
    book = new_book()
    add(book, T0 + MINUTE, T0 + 2 * MINUTE, now=T0)
    assert [s.id for s in book.ended_between(T0, T0 + 5 * MINUTE)] == ["s1"]


def test_prune_drops_silences_ended_more_than_the_retention_ago() -> None:
    book = new_book(retention=5 * DAY)
    add(book, T0, T0 + HOUR, now=T0)  # s1 ends at +1h
    add(book, T0, T0 + DAY, now=T0)  # s2 expired at +2h
    add(book, T0, T0 + 10 * DAY, now=T0)  # s3 active throughout
    book.expire("s2", T0 + 2 * HOUR)
    assert book.prune(T0 + 5 * DAY) == []
    assert book.prune(T0 + 5 * DAY + HOUR) == ["s1"]
    assert [s.id for s in book.silences] == ["s2", "s3"]
    with pytest.raises(UnknownSilence):
        book.get("s1")
    assert book.prune(T0 + 5 * DAY + 2 * HOUR) == ["s2"]
    assert book.prune(T0 + 9 * DAY) == []
    assert [s.id for s in book.silences] == ["s3"]


def test_the_default_retention_is_five_days() -> None:
    book = SilenceBook([silence()])
    assert book.prune(T0 + HOUR + 5 * DAY - 1) == []
    assert book.prune(T0 + HOUR + 5 * DAY) == ["s1"]


def test_silences_are_stored_and_read_back_into_a_book() -> None:
    book = new_book()
    add(book, T0, T0 + HOUR, now=T0)
    add(book, T0 + HOUR, T0 + 2 * HOUR, now=T0)
    book.expire("s1", T0 + MINUTE)
    encoded = msgspec.json.encode(book.silences)
    restored = SilenceBook(msgspec.json.decode(encoded, type=list[Silence]))
    assert restored.silences == book.silences
    assert restored.get("s1").expired_at == T0 + MINUTE


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h", 3600), ("2h30m", 9000), ("90s", 90), (" 1h ", 3600)],
)
def test_silence_durations(text: str, seconds: int) -> None:
    assert parse_silence_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "duration '': expected a duration such as 30m, 1h or 2h30m"),
        ("2 hours", "duration '2 hours': expected a duration such as 30m, 1h or 2h30m"),
        ("30m1h", "duration '30m1h': expected a duration such as 30m, 1h or 2h30m"),
        ("1d", "duration '1d': expected a duration such as 30m, 1h or 2h30m"),
        ("0m", "duration '0m': a silence must last longer than 0s"),
    ],
)
def test_bad_silence_durations(text: str, message: str) -> None:
    with pytest.raises(SilenceError) as refused:
        parse_silence_duration(text)
    assert str(refused.value) == message


MATCH_ANYTHING = (
    "every matcher also matches an empty label ({}), so the silence would cover every alert;"
    " at least one must not"
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"matchers": ()}, "a silence needs at least one matcher"),
        (
            {"matchers": (parse_matcher('server=~".*"'),)},
            MATCH_ANYTHING.format('server=~".*"'),
        ),
        (
            {"matchers": (parse_matcher('server=""'), parse_matcher('component!~".+"'))},
            MATCH_ANYTHING.format('server="", component!~".+"'),
        ),
        (
            {"ends_at": T0},
            "a silence must end after it starts: it starts 2016-10-10T00:00:00Z"
            " and ends 2016-10-10T00:00:00Z",
        ),
        (
            {"ends_at": T0 - HOUR},
            "a silence must end after it starts: it starts 2016-10-10T00:00:00Z"
            " and ends 2016-10-09T23:00:00Z",
        ),
        ({"ends_at": float("inf")}, "its times must be finite numbers of seconds"),
        ({"expired_at": float("nan")}, "its times must be finite numbers of seconds"),
        ({"created_by": ""}, "created_by is empty; say who silences and why"),
        ({"created_by": "  "}, "created_by is empty; say who silences and why"),
        ({"comment": "\n"}, "comment is empty; say who silences and why"),
        (
            {"comment": "x" * (MAX_TEXT_LENGTH + 1)},
            "comment is 1001 characters long, more than 1000",
        ),
        (
            {"created_by": "y" * 5000},
            "created_by is 5000 characters long, more than 1000",
        ),
        ({"id": ""}, "bad id '': expected up to 1000 printable characters"),
        ({"id": "a\nb"}, "bad id 'a\\nb': expected up to 1000 printable characters"),
    ],
)
def test_every_refusal_of_a_silence_is_one_line(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SilenceError) as refused:
        silence(**changes)
    assert str(refused.value) == message
    assert "\n" not in str(refused.value)


def test_a_silence_with_one_selective_matcher_among_broad_ones_is_accepted() -> None:
    accepted = silence(matchers=(parse_matcher('server=~".*"'), parse_matcher("service=Mail")))
    assert state(accepted, T0) == "active"


def test_add_refuses_a_bad_silence_and_keeps_nothing() -> None:
    book = new_book()
    with pytest.raises(SilenceError, match="at least one must not"):
        add(book, T0, T0 + HOUR, now=T0, matchers=(parse_matcher("server=~'.*'"),))
    with pytest.raises(SilenceError, match="comment is empty"):
        book.add(INBOXES, starts_at=T0, ends_at=T0 + HOUR, created_by="ops", comment="", now=T0)
    assert book.silences == ()


def test_a_time_too_far_off_for_a_date_is_shown_as_given() -> None:
    book = new_book()
    with pytest.raises(SilenceError) as refused:
        add(book, T0, -1e20, now=T0)
    assert str(refused.value) == (
        "a silence must end in the future: it ends -1e+20, now is 2016-10-10T00:00:00Z"
    )


def test_alertmanagers_refresh_leaves_out_a_silenced_alert() -> None:
    silences = Silences(clock=lambda: 1e9)
    rules = load_default_rules()
    am = parse_config(
        'receivers:\n  - {name: am, type: alertmanager, url: "http://127.0.0.1:9"}\n',
        "sereno.yaml",
        rules,
    )
    plan = Planner(am, rules, silences)
    [spec] = am.receivers
    firing = [change("web01", 0), change("pdf01", 0, service="pdf")]
    assert len(plan.firing_for(spec, firing, 1e9)) == 2
    silences.add([parse_matcher("service=web")], 2e9, "ana", "deploy")
    assert [n.server for n in plan.firing_for(spec, firing, 1e9)] == ["pdf01"]
