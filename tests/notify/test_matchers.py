"""Label matchers: each operator, Alertmanager's anchoring and absent labels, the forms the CLI
reads (bare, single and double quotes, escapes), the canonical text read back, and every
message a bad matcher is refused with."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sereno.notify import matchers as matchers_module
from sereno.notify.matchers import (
    OPERATORS,
    Matcher,
    MatcherError,
    Operator,
    describe,
    matches,
    parse_matcher,
)
from sereno.notify.notice import Notice

INBOX_01 = {
    "alertname": "Disk consumption exceeds 90%",
    "severity": "HIGH",
    "service": "InboxService",
    "server": "inbox_01",
    "component": "disk",
}
MAJORITY = {"alertname": "Most inboxes slow", "severity": "LOW", "service": "InboxService"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("service=InboxService", INBOX_01, True),
        ("service=Inbox", INBOX_01, False),
        ("service=inboxservice", INBOX_01, False),  # case matters, as in Alertmanager
        ("severity!=LOW", INBOX_01, True),
        ("severity!=HIGH", INBOX_01, False),
        ('server=~"inbox_0[12]"', INBOX_01, True),
        ('server=~"inbox_0[34]"', INBOX_01, False),
        ('server!~"inbox_0[12]"', INBOX_01, False),
        ('server!~"inbox_0[34]"', INBOX_01, True),
    ],
)
def test_each_operator(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("inbox_01", True),
        ("inbox_02", True),
        ("inbox_012", False),
        ("xinbox_01", False),
        ("inbox_0", False),
        ("inbox_01\n", False),  # Python's $ would allow a final newline; Go's does not
    ],
)
def test_regexes_are_anchored_at_both_ends(server: str, expected: bool) -> None:
    matcher = parse_matcher('server=~"inbox_0[12]"')
    assert matcher.matches({"server": server}) is expected
    assert parse_matcher('server!~"inbox_0[12]"').matches({"server": server}) is not expected


def test_an_alternation_is_anchored_as_a_whole() -> None:
    matcher = parse_matcher('server=~"inbox_01|mail_01"')
    assert matcher.matches({"server": "mail_01"})
    assert not matcher.matches({"server": "inbox_01x"})
    assert not matcher.matches({"server": "xmail_01"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('server=""', True),
        ("server=", True),
        ('server!~".+"', True),
        ('server=~".*"', True),
        ('server=~".+"', False),
        ('server!=""', False),
        ("server=inbox_01", False),
        ("server!=inbox_01", True),
    ],
)
def test_an_absent_label_matches_as_the_empty_string(text: str, expected: bool) -> None:
    assert "server" not in MAJORITY
    assert parse_matcher(text).matches(MAJORITY) is expected


def test_rule_and_alertname_both_read_the_alertname_label() -> None:
    for name in ("rule", "alertname"):
        matcher = parse_matcher(f'{name}="Disk consumption exceeds 90%"')
        assert matcher.matches(INBOX_01)
        assert not matcher.matches(MAJORITY)
    assert parse_matcher("rule=~'Disk.*'").label == "alertname"
    assert parse_matcher("server=inbox_01").label == "server"


def test_matchers_match_a_notices_labels() -> None:
    notice = Notice(
        status="firing",
        reason="fired",
        rule="Disk consumption exceeds 90%",
        severity="HIGH",
        service="InboxService",
        server="inbox_02",
        component="",
        value=93,
        summary="Disk at 93%",
        description="",
        started=1476057600,
        at=1476057600,
    )
    assert "component" not in notice.labels
    silence = [
        parse_matcher("rule='Disk consumption exceeds 90%'"),
        parse_matcher('server=~"inbox_0[12]"'),
        parse_matcher('component=""'),
    ]
    assert matches(silence, notice.labels)


def test_all_the_matchers_must_match() -> None:
    both = [parse_matcher("service=InboxService"), parse_matcher("severity=HIGH")]
    assert matches(both, INBOX_01)
    assert not matches(both, MAJORITY)
    assert matches([], MAJORITY)  # nothing to satisfy; silences refuse an empty list


def test_other_labels_can_be_matched_by_any_valid_name() -> None:
    matcher = parse_matcher("_team_2=mail")
    assert matcher == Matcher("_team_2", "=", "mail")
    assert matcher.matches({"_team_2": "mail"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("service=InboxService", Matcher("service", "=", "InboxService")),
        ('server=~"inbox_0[12]"', Matcher("server", "=~", "inbox_0[12]")),
        ("severity!=LOW", Matcher("severity", "!=", "LOW")),
        ("name!~'re'", Matcher("name", "!~", "re")),
        ('  service = "Inbox Service"  ', Matcher("service", "=", "Inbox Service")),
        ('service="a\\"b"', Matcher("service", "=", 'a"b')),
        ('service="a\\\\b"', Matcher("service", "=", "a\\b")),
        ('server=~"inbox_\\d+"', Matcher("server", "=~", "inbox_\\d+")),  # kept as written
        ("service='a\\\"b'", Matcher("service", "=", 'a\\"b')),  # single quotes: as is
        ("service='say \"hi\"'", Matcher("service", "=", 'say "hi"')),
        ("service=a=b", Matcher("service", "=", "a=b")),
        ('service="=x"', Matcher("service", "=", "=x")),
        ("server=", Matcher("server", "=", "")),
        ("server=''", Matcher("server", "=", "")),
    ],
)
def test_parse_reads_the_cli_forms(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize(
    ("matcher", "text"),
    [
        (Matcher("service", "=", "InboxService"), 'service="InboxService"'),
        (Matcher("server", "=~", "inbox_0[12]"), 'server=~"inbox_0[12]"'),
        (Matcher("severity", "!=", "LOW"), 'severity!="LOW"'),
        (Matcher("rule", "!~", "Disk.*"), 'rule!~"Disk.*"'),
        (Matcher("service", "=", 'a"b\\c'), 'service="a\\"b\\\\c"'),
        (Matcher("server", "=", ""), 'server=""'),
    ],
)
def test_describe_gives_the_canonical_text(matcher: Matcher, text: str) -> None:
    assert describe(matcher) == text
    assert parse_matcher(text) == matcher


@given(
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True),
    op=st.sampled_from(["=", "!="]),
    value=st.text(max_size=20),
)
def test_describe_is_read_back_as_the_same_matcher(name: str, op: Operator, value: str) -> None:
    matcher = Matcher(name, op, value)
    assert parse_matcher(describe(matcher)) == matcher


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "empty matcher: expected a label, an operator (=, !=, =~, !~) and a value,"
            ' as in service="Inbox"',
        ),
        (
            "   ",
            "empty matcher: expected a label, an operator (=, !=, =~, !~) and a value,"
            ' as in service="Inbox"',
        ),
        ("service", "matcher 'service': no operator; expected =, !=, =~ or !~"),
        ("=InboxService", "matcher '=InboxService': no label name before the operator"),
        (
            "1server=inbox_01",
            "matcher '1server=inbox_01': bad label name '1server':"
            " letters, digits and _, not starting with a digit",
        ),
        (
            "ser-vice=x",
            "matcher 'ser-vice=x': bad label name 'ser-vice':"
            " letters, digits and _, not starting with a digit",
        ),
        (
            "service==InboxService",
            "matcher 'service==InboxService': unknown operator '=='; expected =, !=, =~ or !~",
        ),
        (
            "severity<>LOW",
            "matcher 'severity<>LOW': unknown operator '<>'; expected =, !=, =~ or !~",
        ),
        ("server~inbox", "matcher 'server~inbox': unknown operator '~'; expected =, !=, =~ or !~"),
        ('service="Inbox', "matcher 'service=\"Inbox': unterminated \" quote"),
        ('service="Inbox\\"', 'matcher \'service="Inbox\\\\"\': unterminated " quote'),
        ("service='Inbox", "matcher \"service='Inbox\": unterminated ' quote"),
        (
            'service="Inbox"Service',
            "matcher 'service=\"Inbox\"Service': unexpected 'Service' after the closing quote",
        ),
        (
            "service=Inbox'Service'",
            "matcher \"service=Inbox'Service'\": quote inside an unquoted value;"
            " quote the whole value",
        ),
        (
            'server=~"inbox_(0"',
            "matcher 'server=~\"inbox_(0\"': invalid regular expression:"
            " missing ), unterminated subpattern at position 6",
        ),
        (
            'server!~"[z-a]"',
            "matcher 'server!~\"[z-a]\"': invalid regular expression:"
            " bad character range z-a at position 1",
        ),
        (
            'server=~"a)|(b"',
            "matcher 'server=~\"a)|(b\"': invalid regular expression:"
            " unbalanced parenthesis at position 1",
        ),
    ],
)
def test_every_refusal_is_one_line_naming_the_matcher(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as refused:
        parse_matcher(text)
    assert str(refused.value) == message
    assert "\n" not in message


def test_a_matcher_built_directly_is_checked_too() -> None:
    with pytest.raises(MatcherError) as refused:
        Matcher("server", "=~", "inbox_(")
    assert str(refused.value) == (
        "matcher 'server=~\"inbox_(\"': invalid regular expression:"
        " missing ), unterminated subpattern at position 6"
    )
    with pytest.raises(MatcherError, match=r"bad label name '9'"):
        Matcher("9", "=", "x")


def test_matchers_are_stored_and_read_back() -> None:
    stored = [Matcher(name, op, "inbox_0[12]") for name, op in zip("abcd", OPERATORS, strict=True)]
    encoded = msgspec.json.encode(stored)
    assert msgspec.json.decode(encoded, type=list[Matcher]) == stored
    assert hash(stored[0]) == hash(Matcher("a", "=", "inbox_0[12]"))  # frozen: usable as a key


def test_a_bad_stored_matcher_is_refused_when_read() -> None:
    with pytest.raises(msgspec.ValidationError, match="Invalid enum value '=='"):
        msgspec.json.decode(b'{"name":"a","op":"==","value":"x"}', type=Matcher)
    with pytest.raises(MatcherError, match="invalid regular expression"):
        msgspec.json.decode(b'{"name":"a","op":"=~","value":"("}', type=Matcher)


def test_a_regex_is_compiled_once_not_at_every_match() -> None:
    matcher = parse_matcher('server=~"inbox_0[5-9]_cached"')
    compiled_before = matchers_module._anchored.cache_info().misses
    for server in ("inbox_05_cached", "inbox_01", "") * 100:
        matcher.matches({"server": server})
    assert matchers_module._anchored.cache_info().misses == compiled_before
