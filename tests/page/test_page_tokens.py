"""The web page of a service that needs a bearer token (`--token-file`), in Chromium: the page
shows no data without it, asks for it, and works once it is given."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import BrowserLog, PageService, start_page_service, stop_page_service

TOKEN = "a-token-for-the-page-7f3a9c"
# what the page's script may ask for before it has the token, each answered 401
READ_PATHS = (
    "/alerts", "/alerts/history", "/api/status", "/api/rules", "/api/fleet", "/api/silences",
    "/api/receivers",
)  # fmt: skip


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageService]:
    started = start_page_service(tmp_path_factory.mktemp("guarded"), token=TOKEN)
    yield started
    stop_page_service(started)


def test_without_the_token_the_page_is_served_with_no_data(guarded: PageService) -> None:
    bare = httpx.get(guarded.url + "/")
    assert bare.status_code == 200
    assert 'data-tokens-required="true"' in bare.text
    assert "data-alert-id" not in bare.text
    given = httpx.get(guarded.url + "/", headers=guarded.headers())
    assert given.text.count('class="alert"') == 3 or given.text.count("data-alert-id=") == 3


def test_the_page_asks_for_the_token_and_works_once_given(
    page: Page, guarded: PageService, browser_log: BrowserLog
) -> None:
    for path in READ_PATHS:
        browser_log.allow(401, path)
    page.goto(guarded.url + "/")
    expect(page.locator("body")).to_have_attribute("data-tokens-required", "true")
    # the dialog's password input, labelled "Access token"
    token = page.locator("dialog input[type=password]")
    expect(token).to_be_visible()
    expect(token).to_have_accessible_name("Access token")
    expect(page.locator("tr.alert")).to_have_count(0)
    use = page.get_by_role("button", name="Use token")

    token.fill("not-the-token")
    with page.expect_response(lambda answer: answer.status == 401):
        use.click()
    # refused: it asks again
    expect(token).to_be_visible()

    token.fill(TOKEN)
    use.click()
    expect(page.locator("tr.alert")).to_have_count(3)
    expect(token).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text(re.compile(r"Updated \d\d:\d\d:\d\d"))
    # kept for the session: a reload does not ask again
    page.reload()
    expect(page.locator("tr.alert")).to_have_count(3)
    expect(token).to_be_hidden()
