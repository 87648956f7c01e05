"""The alerts view of the web page in Chromium, against the real service fed the scenario of
`data/scenarios/page_fleet.jsonl`: three alerts open (InboxService's load, a majority of 3 of
5 servers, HIGH; the disks of pdf01 and fb01, MEDIUM)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import BrowserLog, PageService


def test_the_page_renders_without_an_error(
    page: Page, service: PageService, browser_log: BrowserLog
) -> None:
    browser_log.allow(404, "/favicon.ico")  # until the page serves its icon
    answer = page.goto(service.url + "/")
    assert answer is not None and answer.status == 200
    expect(page.locator("h1")).to_contain_text("Sereno")
