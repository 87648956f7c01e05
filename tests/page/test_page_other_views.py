"""The fleet, the history, the receivers and the page without scripts, in Chromium, against the
real service fed the scenario of `data/scenarios/page_fleet.jsonl` (see `page_fleet.py`):
InboxService's five servers, ReportPDFGenerator's two (pdf02 goes quiet from minute 6) and
FacebookRealtime's two (fb02 passive); inbox05's disk alert is over (an episode of the
history). The tests of this module share the service and run in order: pdf02 goes quiet in
the last."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from playwright.sync_api import Page, expect

from .conftest import SCENARIO_MINUTES, OpenPage, PageService, Shoot, alert_ids, show

DISK = "Disk consumption exceeds 90%"
LIVE = 2000  # ms: how soon the page shows what the API says, without a reload
SERVERS = {
    "FacebookRealtime": ["fb01", "fb02"],
    "InboxService": ["inbox01", "inbox02", "inbox03", "inbox04", "inbox05"],
    "ReportPDFGenerator": ["pdf01", "pdf02"],
}


def hh_mm(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%H:%M")


def test_the_fleet_shows_each_service_s_servers_the_passive_one_marked(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    show(page, service.url + "/?view=fleet")
    main = page.locator("main")
    expect(main.locator("table caption")).to_have_text(list(SERVERS))
    for name, servers in SERVERS.items():
        table = main.locator("table").filter(has=page.locator("caption", has_text=name))
        expect(table.locator("tr[data-server]")).to_have_count(len(servers))
        for server in servers:
            expect(table.locator(f'tr[data-server="{server}"]')).to_have_count(1)
    expect(main.locator('tr[data-server="fb02"] .mark')).to_have_text(["passive"])
    # the disks over 90% that a rule matches are coloured
    expect(main.locator('tr[data-server="pdf01"] .matched')).not_to_have_count(0)
    expect(main.locator('tr[data-server="pdf02"] .matched')).to_have_count(0)
    expect(main.locator("tr.quiet")).to_have_count(0)
    shoot(page, "fleet")


def test_a_resolved_episode_is_on_the_history_timeline(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    records: list[dict[str, Any]] = service.get("/alerts/history").json()
    [over] = [record for record in records if record["server"] == "inbox05"]
    show(page, service.url + "/?view=history")
    timeline = page.get_by_role("region", name="Timeline")
    episode = timeline.locator(f'[data-episode-id="{over["id"]}"]')
    expect(episode).to_have_count(1)
    bar = episode.locator(".bar")
    expect(bar).to_be_visible()
    said = f"{DISK} on inbox05: fired {hh_mm(over['fired'])}, resolved {hh_mm(over['ended'])}"
    assert said in (bar.get_attribute("aria-label"), bar.get_attribute("title"))
    # the open ones are still firing
    ids = alert_ids(service)
    still = timeline.locator(f'[data-episode-id="{ids["pdf01"]}"] .bar')
    expect(still).to_have_count(1)
    assert any(
        text is not None and text.endswith("still firing")
        for text in (still.get_attribute("aria-label"), still.get_attribute("title"))
    )
    filters = page.locator('form[aria-label="Filter history"]')
    for control in ("From", "To", "Rule", "Service", "Severity"):
        expect(filters.get_by_label(control, exact=True)).to_have_count(1)
    shoot(page, "history")


def test_send_a_test_from_the_receivers_view_reaches_the_webhook(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    show(page, service.url + "/?view=receivers")
    ops = page.locator('tr[data-receiver="ops"]')
    expect(ops).to_contain_text("webhook")
    shoot(page, "receivers")
    with page.expect_response(
        lambda answer: (
            answer.url.endswith("/api/receivers/ops/test") and answer.request.method == "POST"
        )
    ) as tested:
        ops.get_by_role("button", name="Send a test").click()
    assert tested.value.status == 200
    assert tested.value.json() == {"receiver": "ops", "ok": True, "error": None}
    service.webhook.wait_for(
        lambda hook: any(
            alert["labels"].get("alertname") == "Sereno test notification"
            for body in hook.accepted()
            for alert in body["alerts"]
        )
    )


def test_without_scripts_the_alerts_and_the_fleet_are_shown_read_only(
    open_page: OpenPage, service: PageService
) -> None:
    page = open_page(java_script_enabled=False)
    page.goto(service.url + "/")
    expect(page.locator("tr.alert")).to_have_count(3)
    expect(page.locator("main")).to_contain_text("3 of 5 servers")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Silence")).to_have_count(0)
    # the filters work through their submit button
    filters = page.get_by_role("search", name="Filter alerts")
    severity = filters.get_by_label("Severity", exact=True)
    if severity.count() == 1 and severity.evaluate("element => element.tagName") == "SELECT":
        severity.select_option("HIGH")
    else:
        filters.get_by_role("group", name="Severity").get_by_label("HIGH", exact=True).check()
    filters.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.alert")).to_have_count(1)

    page.get_by_role("navigation", name="Views").get_by_role("link", name="Fleet").click()
    expect(page.locator("main table caption")).to_have_text(list(SERVERS))
    expect(page.locator("tr[data-server]")).to_have_count(9)


def test_a_server_that_goes_quiet_is_marked_on_the_fleet_within_2_s(
    page: Page, service: PageService
) -> None:
    show(page, service.url + "/?view=fleet")
    pdf02 = page.locator('tr[data-server="pdf02"]')
    expect(pdf02).to_have_count(1)
    expect(page.locator("tr.quiet")).to_have_count(0)
    # the others go on for four minutes; pdf02 sends nothing
    service.push(SCENARIO_MINUTES)
    service.api_until("/api/fleet", lambda fleet: quiet_servers(fleet) == ["pdf02"])
    expect(pdf02).to_have_class(re.compile(r"(^|\s)quiet(\s|$)"), timeout=LIVE)
    expect(pdf02.locator(".mark")).to_have_text(["quiet"])
    expect(page.locator("tr.quiet")).to_have_count(1)


def quiet_servers(fleet: dict[str, Any]) -> list[str]:
    return [
        server["server"]
        for service in fleet["services"]
        for server in service["servers"]
        if server["quiet"]
    ]
