"""The web page's views as the server renders them, from answers built by hand: the exact
HTML of what people and the browser tests rely on, hostile labels escaped, the filters."""

from __future__ import annotations

import pytest

from sereno.engine.alerts import ServerAlert
from sereno.engine.records import AckRecord, EpisodeRecord
from sereno.serve.answers import (
    AlertDetail,
    AlertMinute,
    ComponentReading,
    FleetAnswer,
    NotificationSent,
    OpenAlert,
    ReceiverAnswer,
    RuleAnswer,
    RulesAnswer,
    ServerReading,
    ServiceReading,
    ServiceStatus,
    SeverityAnswer,
    SilenceAnswer,
    SilenceListAnswer,
    StatusCounts,
)
from sereno.serve.page.admin import receivers_view, silences_view
from sereno.serve.page.alert import alert_view, sparkline
from sereno.serve.page.alerts import alerts_view, servers_count
from sereno.serve.page.fleet import fleet_view, latest_time
from sereno.serve.page.history import history_view
from sereno.serve.page.markup import ago, readable_text
from sereno.serve.page.query import (
    AlertFilters,
    HistoryFilters,
    PageQueryError,
    history_period,
    parse_query,
)
from sereno.serve.page.skeleton import skeleton

T0 = 1476057600  # 2016-10-10 00:00:00 UTC
HOSTILE = '<script>alert("x")</script>&'
RULES = RulesAnswer(
    source="rules.yaml",
    severities=[
        SeverityAnswer("LOW", "", "#ffff00"),
        SeverityAnswer("HIGH", "", "#800000"),
        SeverityAnswer("ODD", "", "red; background: url(x)"),  # not a colour: left out
    ],
    rules=[
        RuleAnswer("disk", "per-server", ["LOW", "HIGH"], ["Disk"], "value > 0.9", ""),
        RuleAnswer("cpu", "majority", ["HIGH"], ["Cpu"], "value > 90", ""),
    ],
)


def alert(rule: str = "disk", state: str = "firing", **fields: object) -> OpenAlert:
    given: dict[str, object] = {
        "severity": "HIGH",
        "service": "Inbox",
        "server": "inbox_01",
        "threshold": None,
        "since": T0,
        "value": 0.95,
        "id": f"{rule}-{state}".replace(" ", "_"),
    }
    return OpenAlert(rule=rule, state=state, **{**given, **fields})  # type: ignore[arg-type]


def test_an_alert_row_has_its_id_state_link_severity_colour_and_marks() -> None:
    page = alerts_view([alert(severity="LOW")], RULES, AlertFilters())
    row = (
        '<tr class="alert state-firing" id="alert-disk-firing" data-alert-id="disk-firing" '
        'data-state="firing" style="--sev: #ffff00; --sev-text: #000000">'
        '<td><span class="sev" style="--sev: #ffff00; --sev-text: #000000">LOW</span></td>'
        '<td class="state">firing</td>'
        '<td><a href="/?view=alert&amp;id=disk-firing">disk</a></td>'
        "<td>Inbox</td><td>inbox_01</td>"
        '<td><time datetime="2016-10-10T00:00:00+00:00">2016-10-10 00:00:00</time></td>'
        '<td class="number">0.95</td><td></td></tr>'
    )
    assert row in page
    assert "Quiet alerts" not in page


def test_hostile_labels_are_escaped_everywhere() -> None:
    hostile = alert(rule=HOSTILE, service=HOSTILE, server=HOSTILE, severity=HOSTILE)
    pages = [
        alerts_view([hostile], RULES, AlertFilters(q=HOSTILE, service=(HOSTILE,))),
        alert_view(AlertDetail(hostile, None, [], [], None, []), RULES),
        silences_view(SilenceListAnswer([silence(HOSTILE)], [], []), [hostile]),
    ]
    for page in pages:
        assert "<script>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page


def test_alerts_are_firing_then_without_data_then_pending_and_the_quiet_ones_folded() -> None:
    alerts = [
        alert("a", "pending"),
        alert("b", "no data", no_data_since=T0),
        alert("c", "firing", since=T0 + 60),
        alert("d", "firing"),
        alert("e", "firing", silenced_by=["s1"]),
        alert("f", "firing", ack=AckRecord("ana", T0, "on it", "HIGH")),
        alert("g", "pending", flapping=True, inhibited=True),
    ]
    page = alerts_view(alerts, RULES, AlertFilters())
    order = [page.index(f'data-alert-id="{name}-') for name in "dcbaefg"]
    assert order == sorted(order)
    loud, quiet = page.split('<details class="quiet-alerts"><summary>Quiet alerts (3)</summary>')
    assert 'data-alert-id="e-firing"' in quiet
    assert 'data-alert-id="a-pending"' in loud
    assert '<span class="mark mark-no-data">no data</span>' in loud
    assert '<span class="mark mark-silenced" title="by s1">silenced</span>' in quiet
    assert '<span class="mark mark-acked" title="on it">acknowledged by ana</span>' in quiet
    assert '<span class="mark mark-inhibited">inhibited</span>' in quiet
    assert '<span class="mark mark-flapping">flapping</span>' in quiet


def test_a_majority_alert_shows_how_many_servers_matched_and_which() -> None:
    majority = alert(
        "cpu",
        server=None,
        matched_servers=["a", "b", "c"],
        unmatched_servers=["d"],
        active_servers=5,
    )
    page = alerts_view([majority], RULES, AlertFilters())
    assert (
        '<td><details class="servers"><summary>3 of 5 servers</summary>'
        "<ul><li>a</li><li>b</li><li>c</li></ul></details></td>"
    ) in page
    # without the count of active servers, those that reported
    assert servers_count(alert("cpu", server=None, matched_servers=["a"])) == "1 of 1 servers"


def test_the_filters_keep_the_alerts_asked_for_and_show_what_was_chosen() -> None:
    alerts = [alert("disk", severity="LOW"), alert("cpu", "pending", service="Pdf")]
    only_low = alerts_view(alerts, RULES, AlertFilters(severity=("LOW",)))
    assert 'data-alert-id="disk-firing"' in only_low
    assert 'data-alert-id="cpu-pending"' not in only_low
    assert '<option value="LOW" selected>LOW</option>' in only_low
    by_text = alerts_view(alerts, RULES, AlertFilters(q="PDF", state=("pending",)))
    assert 'data-alert-id="cpu-pending"' in by_text
    assert 'data-alert-id="disk-firing"' not in by_text
    assert '<form role="search" aria-label="Filter alerts" method="get" action="/"' in by_text
    assert '<label for="f-state">State</label><select id="f-state" name="state"' in by_text
    assert '<button type="submit" class="no-script">Filter</button>' in by_text
    nothing = alerts_view(alerts, RULES, AlertFilters(rule=("nope",)))
    assert "No open alert matches these filters." in nothing


def test_the_query_is_checked_and_read() -> None:
    query = parse_query(
        [("view", "alerts"), ("state", "no data"), ("state", "firing"), ("q", " inbox ")]
    )
    assert query.alerts == AlertFilters(state=("no data", "firing"), q="inbox")
    assert parse_query([]).view == "alerts"
    history = parse_query(
        [("view", "history"), ("since", "2016-10-10T00:00"), ("until", str(T0 + 3600))]
    ).history
    assert (history.since, history.until) == (T0, T0 + 3600)
    assert parse_query([("view", "alert"), ("id", "0123abcdef")]).alert_id == "0123abcdef"
    bad = {
        "no view is called 'admin'": [("view", "admin")],
        "`state` is one of": [("state", "sleeping")],
        "`id` must be an alert's id": [("view", "alert"), ("id", "../etc")],
        "`since` must be seconds since the epoch or ISO 8601": [
            ("view", "history"),
            ("since", "yesterday"),
        ],
        "`since` is out of range": [("view", "history"), ("since", "1e300")],
        "`until` must be after `since`": [("view", "history"), ("since", "10"), ("until", "5")],
        "`view` is given more than once": [("view", "fleet"), ("view", "history")],
        "`q` is longer than 200 characters": [("q", "x" * 201)],
    }
    for reason, pairs in bad.items():
        with pytest.raises(PageQueryError, match=reason.replace("(", r"\(")):
            parse_query(pairs)


def test_the_history_period_is_the_last_six_hours_unless_asked() -> None:
    assert history_period(HistoryFilters(), T0) == (T0 - 6 * 3600, T0)
    assert history_period(HistoryFilters(since=T0 - 60), T0) == (T0 - 60, T0)


def test_the_fleet_has_a_table_per_service_quiet_servers_and_matched_values() -> None:
    fleet = FleetAnswer(
        evaluated_before=T0 + 600,
        quiet_after=120,
        services=[
            ServiceReading(
                "Inbox",
                [
                    ServerReading("inbox_01", T0 + 590, True, False, [reading("Disk", 0.95)]),
                    ServerReading("inbox_02", T0 + 300, False, True, [reading("Cpu", 3, [])]),
                ],
            )
        ],
    )
    page = fleet_view(fleet, None)
    assert "<caption>Inbox</caption>" in page
    assert (
        '<tr data-server="inbox_01"><th scope="row">inbox_01</th><td>10s ago</td>'
        '<td><span class="muted">active</span></td>'
        '<td class="number muted">none</td>'
        '<td class="number matched" title="matched by disk">0.95'
        '<span class="visually-hidden"> (matched by disk)</span></td></tr>'
    ) in page
    assert (
        '<tr data-server="inbox_02" class="quiet"><th scope="row">inbox_02</th><td>5m ago</td>'
        '<td><span class="mark mark-quiet">quiet</span> '
        '<span class="mark mark-passive">passive</span></td>'
    ) in page


def reading(component: str, value: float, matched_by: list[str] | None = None) -> ComponentReading:
    return ComponentReading(component, value, T0, ["disk"] if matched_by is None else matched_by)


def test_the_history_timeline_places_each_episode_by_its_share_of_the_period() -> None:
    ended = episode("e1", fired=T0 + 3600, ended=T0 + 7200)
    still = episode("e2", fired=T0 + 4 * 3600, ended=None)
    page = history_view([ended, still], RULES, HistoryFilters(), (T0, T0 + 6 * 3600))
    assert '<section aria-label="Timeline" class="timeline">' in page
    assert (
        '<span class="bar" role="img" title="disk on inbox_01: fired 01:00, resolved 02:00" '
        'aria-label="disk on inbox_01: fired 01:00, resolved 02:00" '
        'style="left: 16.67%; width: 16.67%"></span>'
    ) in page
    assert 'aria-label="disk on inbox_01: fired 04:00, still firing"' in page
    assert 'style="left: 66.67%; width: 33.33%"' in page
    assert page.count('data-episode-id="e1"') == 1  # the table's row is not a second match
    assert '<form role="search" aria-label="Filter history"' in page
    assert (
        '<label for="f-since">From</label><input id="f-since" name="since" '
        'type="datetime-local" value="2016-10-10T00:00"'
    ) in page


def episode(episode_id: str, fired: int, ended: int | None) -> EpisodeRecord:
    last = ServerAlert("disk", "HIGH", fired, "Disk", 0.95, "inbox_01", "Inbox")
    return EpisodeRecord(
        rule="disk",
        severity="HIGH",
        service="Inbox",
        server="inbox_01",
        state="resolved" if ended else "firing",
        started=fired - 60,
        fired=fired,
        ended=ended,
        peak=0.97,
        windows=3,
        last=last,
        id=episode_id,
    )


def test_an_alerts_page_has_its_sections_its_sparkline_and_its_matched_servers() -> None:
    majority = alert("cpu", server=None, matched_servers=["a", "b"], active_servers=3)
    minutes = [
        AlertMinute(T0, 1, True, "HIGH", "firing"),
        AlertMinute(T0 + 60, None, False, "HIGH", "firing"),
        AlertMinute(T0 + 120, 3, True, "HIGH", "firing"),
    ]
    ack = None
    page = alert_view(AlertDetail(majority, None, minutes, [], ack, []), RULES)
    assert page.startswith("<h2>cpu</h2>")
    for title in ("Minutes", "Notifications", "Acknowledgement", "Silences"):
        assert f"<section><h3>{title}</h3>" in page
    assert '<ul aria-label="Matched servers"><li>a</li><li>b</li></ul>' in page
    assert "2 of 3 servers" in page
    assert (
        '<polyline points="0.0,38.0"></polyline><polyline points="240.0,2.0"></polyline>'
    ) in sparkline(minutes)
    assert '<td>00:01:00</td><td class="number"></td><td>no</td>' in page


def test_an_alerts_notifications_say_what_each_told_and_what_became_of_it() -> None:
    sent = [
        NotificationSent("ops", T0 + 1, "failed", "fired", "HTTP 503 <from> it", "[FIRING] cpu"),
        NotificationSent("ops", T0 + 3, "sent", "fired", "", "[FIRING] cpu"),
    ]
    page = alert_view(AlertDetail(alert("cpu"), None, [], sent, None, []), RULES)
    assert (
        '<tr><td>ops</td><td><time datetime="2016-10-10T00:00:01+00:00">2016-10-10 00:00:01'
        '</time></td><td>fired</td><td class="outcome-failed">failed</td><td>[FIRING] cpu</td>'
        "<td>HTTP 503 &lt;from&gt; it</td></tr>"
    ) in page


def test_an_ended_alerts_page_is_drawn_from_its_episode() -> None:
    record = episode("e1", fired=T0, ended=T0 + 60)
    page = alert_view(AlertDetail(None, record, [], [], None, []), RULES)
    assert '<span class="state">resolved</span>' in page
    assert "Matched servers" not in page


def silence(comment: str = "deploy", silence_id: str = "s1") -> SilenceAnswer:
    return SilenceAnswer(
        silence_id, "active", ['service="Inbox"'], T0, T0 + 7200, "ana", comment, T0, None
    )


def test_a_silence_shows_what_it_mutes_now() -> None:
    muted = alert(silenced_by=["s1"])
    page = silences_view(SilenceListAnswer([silence()], [], []), [muted, alert("cpu")])
    assert '<tr data-silence-id="s1" data-state="active">' in page
    assert (
        '<td><ul class="matchers"><li><code>service=&quot;Inbox&quot;</code></li></ul></td>' in page
    )
    assert '<a href="/?view=alert&amp;id=disk-firing">disk on inbox_01</a>' in page
    assert "cpu on" not in page


def test_a_receiver_row_has_its_counts_and_last_error() -> None:
    receiver = ReceiverAnswer("ops", "webhook", 1, 8, 2, 2, 0, T0, "answered 500", T0 + 60)
    status = ServiceStatus("1.0", "rules.yaml", 2, T0, False, StatusCounts(5, 0, 0, 0, 3, 0))
    page = receivers_view([receiver], status)
    assert (
        '<tr data-receiver="ops"><th scope="row">ops</th><td>webhook</td>'
        '<td class="number">1</td><td class="number">8</td><td class="number">2</td>'
        '<td class="number">2</td><td class="number">0</td>'
    ) in page
    assert 'answered 500 (<time datetime="2016-10-10T00:01:00+00:00">' in page
    assert '<tr><th scope="row">events evaluated</th><td class="number">5</td></tr>' in page


def test_the_skeleton_names_the_current_view_and_reloads_without_scripts() -> None:
    page = skeleton("Sereno", "fleet", "<p>x</p>", tokens_required=True)
    assert '<body data-tokens-required="true">' in page
    assert '<a href="/?view=fleet" aria-current="page">Fleet</a>' in page
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page
    assert '<main id="main" data-view="fleet" tabindex="-1">\n<p>x</p>\n</main>' in page


def test_text_on_a_severity_colour_is_black_or_white_whichever_reads_better() -> None:
    assert readable_text("#ffff00") == "#000000"
    assert readable_text("#800000") == "#ffffff"
    assert ago(59) == "59s ago"
    assert ago(3600) == "1h ago"


def test_a_flat_sparkline_runs_across_the_middle() -> None:
    flat = [AlertMinute(T0 + 60 * n, 5, True, "HIGH", "firing") for n in range(3)]
    assert '<polyline points="0.0,20.0 120.0,20.0 240.0,20.0"></polyline>' in sparkline(flat)
    assert sparkline([AlertMinute(T0, None, False, "HIGH", "firing")]) == ""


def test_a_reports_age_counts_to_the_latest_report_when_it_is_newer() -> None:
    server = ServerReading("a", T0 + 90, True, False, [])
    fleet = FleetAnswer(T0 + 60, 120, [ServiceReading("Inbox", [server])])
    assert latest_time(fleet) == T0 + 90
    assert latest_time(FleetAnswer(None, 120, [ServiceReading("Inbox", [server])])) is None
    assert "<td>0s ago</td>" in fleet_view(fleet, None)
