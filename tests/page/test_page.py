"""The alerts view of the web page and one alert's page, in Chromium, against the real service
fed the scenario of `data/scenarios/page_fleet.jsonl` (see `page_fleet.py`): three alerts open,
InboxService's load (a majority, 3 of 5 servers, HIGH) and the disks of pdf01 and fb01
(MEDIUM). The tests of this module share the service and run in order: the silence, the
acknowledgements and the silence extended then expired come last.

The page's changes are waited for with Playwright's `expect`, each with a deadline; a change
made through the API must show within 2 s without a reload (the page polls every second)."""

from __future__ import annotations

import re
import subprocess
import sys

from playwright.sync_api import Locator, Page, expect

from .conftest import (
    NARROW,
    UPDATED,
    BrowserLog,
    OpenPage,
    PageService,
    Shoot,
    alert_ids,
    reload_shown,
    show,
    told_of,
)
from conftest import DATA, run_sereno

DISK = "Disk consumption exceeds 90%"
LOAD = "5 min load average exceeds 4.0"
LIVE = 2000  # ms: how soon the page shows what the API says, without a reload


def rows(page: Page) -> Locator:
    return page.locator("tr.alert")


def row(page: Page, alert_id: str) -> Locator:
    return page.locator(f'tr.alert[data-alert-id="{alert_id}"]')


QUIET = re.compile(r"^Quiet alerts \(\d+\)$")


def quiet_summary(page: Page) -> Locator:
    """The summary of the folded section of the quiet alerts (not a majority alert's own)."""
    return page.locator("details > summary").filter(has_text=QUIET)


def quiet_alerts(page: Page) -> Locator:
    return quiet_summary(page).locator("..")


def choose(form: Locator, name: str, value: str) -> None:
    """Pick `value` in the filter `name`: a `<select>` labelled so, or a group of that name
    of checkboxes each labelled by its value."""
    control = form.get_by_label(name, exact=True)
    if control.count() == 1 and control.evaluate("element => element.tagName") == "SELECT":
        control.select_option(value)
    else:
        form.get_by_role("group", name=name).get_by_label(value, exact=True).check()


def chosen(form: Locator, name: str) -> list[str]:
    """The values picked in the filter `name`."""
    control = form.get_by_label(name, exact=True)
    if control.count() == 1 and control.evaluate("element => element.tagName") == "SELECT":
        picked: list[str] = control.evaluate(
            "select => [...select.selectedOptions].map(option => option.value)"
        )
        return picked
    boxes = form.get_by_role("group", name=name).get_by_role("checkbox")
    checked: list[str] = boxes.evaluate_all(
        "boxes => boxes.filter(box => box.checked).map(box => box.value)"
    )
    return checked


def test_the_scenario_file_is_what_its_generator_writes() -> None:
    script = DATA / "scenarios" / "page_fleet.py"
    written = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    ).stdout
    assert written == (DATA / "scenarios" / "page_fleet.jsonl").read_text(encoding="utf-8")


def test_the_page_lists_the_open_alerts_and_says_when_it_was_updated(
    page: Page, service: PageService
) -> None:
    answer = page.goto(service.url + "/")
    assert answer is not None and answer.status == 200
    expect(page.locator("h1")).to_have_text("Sereno")
    expect(page.get_by_role("navigation", name="Views").get_by_role("link")).to_have_text(
        ["Alerts", "Fleet", "History", "Silences", "Receivers"]
    )
    ids = alert_ids(service)
    expect(rows(page)).to_have_count(3)
    for alert_id in ids.values():
        expect(row(page, alert_id)).to_have_attribute("data-state", "firing")
    expect(row(page, ids["pdf01"]).get_by_role("link", name=DISK)).to_have_attribute(
        "href", f"/?view=alert&id={ids['pdf01']}"
    )
    expect(page.locator("#live-status")).to_have_text(re.compile(r"Updated \d\d:\d\d:\d\d"))


def test_the_keyboard_reaches_the_skip_link_first_then_the_views(
    page: Page, service: PageService
) -> None:
    show(page, service.url + "/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    views = page.get_by_role("navigation", name="Views")
    expect(views.get_by_role("link", name="Alerts")).to_be_focused()


def test_a_failed_poll_is_said_in_the_status_and_the_next_one_that_works_too(
    page: Page, service: PageService, browser_log: BrowserLog
) -> None:
    show(page, service.url + "/")
    browser_log.allow(503, "/alerts")
    page.route("**/alerts", lambda route: route.fulfill(status=503, json={"error": "down"}))
    expect(page.locator("#live-status")).to_contain_text("fail", ignore_case=True, timeout=LIVE)
    page.unroute("**/alerts")
    expect(page.locator("#live-status")).to_have_text(UPDATED, timeout=LIVE)


def test_filtering_by_severity_changes_the_list_and_the_url_and_a_reload_keeps_it(
    page: Page, service: PageService
) -> None:
    ids = alert_ids(service)
    show(page, service.url + "/")
    expect(rows(page)).to_have_count(3)
    filters = page.get_by_role("search", name="Filter alerts")
    choose(filters, "Severity", "HIGH")
    expect(rows(page)).to_have_count(1)
    expect(row(page, ids["InboxService"])).to_have_count(1)
    expect(page).to_have_url(re.compile(r"[?&]severity=HIGH(&|$)"))

    reload_shown(page)
    expect(rows(page)).to_have_count(1)
    expect(row(page, ids["InboxService"])).to_have_count(1)
    assert chosen(page.get_by_role("search", name="Filter alerts"), "Severity") == ["HIGH"]


def test_filtering_by_service_changes_the_list_and_the_url_and_a_reload_keeps_it(
    page: Page, service: PageService
) -> None:
    ids = alert_ids(service)
    show(page, service.url + "/?view=alerts")
    expect(rows(page)).to_have_count(3)
    choose(page.get_by_role("search", name="Filter alerts"), "Service", "ReportPDFGenerator")
    expect(rows(page)).to_have_count(1)
    expect(row(page, ids["pdf01"])).to_have_count(1)
    expect(page).to_have_url(re.compile(r"[?&]service=ReportPDFGenerator(&|$)"))

    reload_shown(page)
    expect(rows(page)).to_have_count(1)
    expect(row(page, ids["pdf01"])).to_have_count(1)
    filters = page.get_by_role("search", name="Filter alerts")
    assert chosen(filters, "Service") == ["ReportPDFGenerator"]


def test_a_majority_alert_says_how_many_servers_and_its_page_lists_them(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    majority = alert_ids(service)["InboxService"]
    show(page, service.url + "/")
    load = row(page, majority)
    expect(load).to_contain_text("3 of 5 servers")
    load.get_by_role("link", name=LOAD).click()
    expect(page).to_have_url(re.compile(rf"\?(?=.*\bview=alert(&|$))(?=.*\bid={majority}(&|$))"))
    expect(page.get_by_role("heading", level=2)).to_have_text(LOAD)
    for section in ("Minutes", "Notifications", "Acknowledgement", "Silences"):
        expect(page.get_by_role("heading", level=3, name=section)).to_be_visible()
    matched = page.get_by_role("list", name="Matched servers").get_by_role("listitem")
    expect(matched).to_have_text(["inbox01", "inbox02", "inbox03"])
    shoot(page, "alert")


def test_at_400_pixels_wide_the_alerts_view_does_not_overflow(
    open_page: OpenPage, service: PageService, shoot: Shoot
) -> None:
    page = open_page(viewport=NARROW)
    show(page, service.url + "/")
    expect(rows(page)).to_have_count(3)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= NARROW["width"] + 1
    shoot(page, "alerts")


def test_a_silence_made_from_the_page_marks_the_alert_and_keeps_it_from_the_webhook(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    ids = alert_ids(service)
    show(page, service.url + "/")
    disk = row(page, ids["pdf01"])
    disk.get_by_role("button", name="Silence").click()
    dialog = page.get_by_role("dialog", name="New silence")
    expect(dialog).to_be_visible()
    matchers = [dialog.get_by_label(f"Matcher {n}", exact=True) for n in (1, 2, 3)]
    assert sorted(matcher.input_value() for matcher in matchers) == sorted(
        [f'rule="{DISK}"', 'service="ReportPDFGenerator"', 'server="pdf01"']
    )
    duration = dialog.get_by_label("Duration", exact=True)
    assert duration.input_value() == "2h"
    dialog.get_by_label("Your name", exact=True).fill("ana")
    dialog.get_by_label("Comment", exact=True).fill("disk swap")
    shoot(page, "alerts-dialog")
    with page.expect_response(
        lambda answer: answer.url.endswith("/api/silences") and answer.request.method == "POST"
    ) as made:
        dialog.get_by_role("button", name="Create silence").click()
    assert made.value.status == 201
    silence_id = made.value.json()["id"]
    expect(dialog).to_be_hidden()
    expect(disk.locator(".mark-silenced")).to_have_text("silenced", timeout=LIVE)
    expect(quiet_summary(page)).to_have_text("Quiet alerts (1)")
    expect(quiet_alerts(page).locator(f'tr.alert[data-alert-id="{ids["pdf01"]}"]')).to_have_count(1)
    silenced = {alert["id"]: alert["silenced_by"] for alert in service.get("/alerts").json()}
    assert silenced[ids["pdf01"]] == [silence_id]

    # what was planned before the silence is delivered; then minutes 5 and 6 are evaluated, in
    # each of which every alert would be reminded of: the others are, pdf01 is not
    service.nothing_queued()
    before = len(service.webhook.accepted())
    service.push(9)
    service.webhook.wait_for(
        lambda hook: any("InboxService" in told_of(body) for body in hook.accepted()[before:]),
        timeout=15,
    )
    service.nothing_queued()
    later = [told_of(body) for body in service.webhook.accepted()[before:]]
    assert not any("pdf01" in servers for servers in later), later
    assert any("fb01" in servers for servers in later), later


def test_the_silences_view_lists_the_silence_with_extend_and_expire(
    page: Page, service: PageService, shoot: Shoot
) -> None:
    show(page, service.url + "/?view=silences")
    expect(page.get_by_role("button", name="New silence")).to_be_visible()
    expect(page.get_by_role("button", name="Extend")).to_have_count(1)
    expect(page.get_by_role("button", name="Expire")).to_have_count(1)
    expect(page.locator("main")).to_contain_text("disk swap")
    shoot(page, "silences")


def test_an_alert_acknowledged_from_the_page_is_marked_without_a_reload(
    page: Page, service: PageService
) -> None:
    ids = alert_ids(service)
    show(page, service.url + "/")
    disk = row(page, ids["fb01"])
    disk.get_by_role("button", name="Acknowledge").click()
    dialog = page.get_by_role("dialog").filter(has=page.get_by_label("Your name", exact=True))
    expect(dialog).to_be_visible()
    dialog.get_by_label("Your name", exact=True).fill("bob")
    dialog.get_by_label("Comment", exact=True).fill("replacing the disk")
    with page.expect_response(
        lambda answer: (
            answer.url.endswith(f"/api/alerts/{ids['fb01']}/ack")
            and answer.request.method == "POST"
        )
    ) as acked:
        dialog.get_by_role("button", name="Acknowledge").click()
    assert acked.value.ok
    expect(disk.locator(".mark-acked")).to_have_text("acknowledged by bob", timeout=LIVE)


def test_an_alert_acknowledged_elsewhere_is_marked_on_the_open_page_within_2_s(
    page: Page, service: PageService
) -> None:
    majority = alert_ids(service)["InboxService"]
    show(page, service.url + "/")
    expect(row(page, majority)).to_have_count(1)
    acked = run_sereno("ack", majority, "--author", "carol", "--url", service.url)
    assert acked.returncode == 0, acked.stderr
    expect(row(page, majority).locator(".mark-acked")).to_have_text(
        "acknowledged by carol", timeout=LIVE
    )
    expect(quiet_summary(page)).to_have_text("Quiet alerts (3)", timeout=LIVE)


def test_a_silence_is_extended_by_2_hours_then_expired_from_the_silences_view(
    page: Page, service: PageService
) -> None:
    [silence] = service.get("/api/silences").json()["active"]
    show(page, service.url + "/?view=silences")
    with page.expect_response(
        lambda answer: (
            answer.url.endswith(f"/api/silences/{silence['id']}")
            and answer.request.method == "DELETE"
        )
    ) as expired:
        page.get_by_role("button", name="Extend").click()
    assert expired.value.ok
    # extended: a new silence with the same matchers ending 2 h later, the old one expired
    [extended] = service.get("/api/silences").json()["active"]
    assert extended["id"] != silence["id"]
    assert extended["matchers"] == silence["matchers"]
    assert extended["ends_at"] == silence["ends_at"] + 2 * 3600
    expect(page.get_by_role("button", name="Extend")).to_have_count(1)

    with page.expect_response(
        lambda answer: (
            answer.url.endswith(f"/api/silences/{extended['id']}")
            and answer.request.method == "DELETE"
        )
    ) as expired:
        page.get_by_role("button", name="Expire").click()
    assert expired.value.ok
    assert service.get("/api/silences").json()["active"] == []
    expect(page.get_by_role("button", name="Extend")).to_have_count(0, timeout=LIVE)

    # pdf01 is no longer silenced: only the two acknowledged alerts are quiet
    show(page, service.url + "/")
    expect(quiet_summary(page)).to_have_text("Quiet alerts (2)")
    pdf01 = row(page, alert_ids(service)["pdf01"])
    expect(pdf01.get_by_role("button", name="Silence")).to_be_visible()
