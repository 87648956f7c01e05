"""The browser tests' harness: Debian's Chromium driven by Playwright, a page that fails its
test on any console error or warning, uncaught error or failed request, the real `sereno
serve` fed by the real `sereno push`, and screenshots of each view.

Chromium is the Debian package (`tests/install-peers.sh` installs it), launched by path:
Playwright's own browsers are never downloaded. One browser serves all the browser tests and
one service each test module, so that they stay quick.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from peers import HttpReceiver, free_port
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)

from conftest import DATA, Server, run_sereno, sereno_executable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 860}

SCENARIO = DATA / "scenarios" / "page_fleet.jsonl"  # written by page_fleet.py beside it
SCENARIO_T0 = 1476057600  # minute 0 of the scenario file
SCENARIO_MINUTES = 10
FIRST_PUSHED = 6  # the service is fed minutes 0-5 at start; the tests push 6-9 when they need
# Minute 5 of the scenario is the minute before the one the tests start in, so minutes 6-9 are
# up to five minutes ahead of the clock when pushed: allowed with this much clock skew.
MAX_CLOCK_SKEW = 900
WEBHOOK = "ops"  # the receiver of the services started here: the test's webhook
# reminded every minute, so that a silence or an acknowledgement is seen to hold
CONFIG = 'receivers:\n  - {{name: ops, type: webhook, url: "{url}", repeat_interval: 1m}}\n'


# -- the browser ------------------------------------------------------------------------------


# Package scope, not session: Playwright's driver holds an event loop as running in this
# thread while it is started, so it is stopped after the last browser test, before other tests
# run coroutines of their own with asyncio.run.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run tests/install-peers.sh "
            "(it installs the Debian package chromium)"
        )
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@dataclass
class BrowserLog:
    """What went wrong in the pages of a test: console errors and warnings, uncaught errors,
    requests that failed, answers of 400 or more that the test did not expect (`allow`), and
    requests to anywhere but the service on 127.0.0.1 (the page fetches nothing from
    elsewhere)."""

    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, str]] = field(default_factory=list)  # (status, path)
    watching: bool = True

    def allow(self, status: int, path: str) -> None:
        """Answers `status` to requests of `path` are expected (and so is the console line
        Chromium writes for each)."""
        self.allowed.append((status, path))

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._note(f"uncaught error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._answered)
        page.on("request", self._requested)

    def _note(self, problem: str) -> None:
        if self.watching:
            self.problems.append(problem)

    def _is_allowed(self, status: int, url: str) -> bool:
        return (status, urlsplit(url).path) in self.allowed

    def _console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        url = message.location.get("url", "")
        expected = [
            status for status, path in self.allowed
            if urlsplit(url).path == path and f"status of {status}" in message.text
        ]  # fmt: skip
        if not expected:
            self._note(f"console {message.type}: {message.text} ({url})")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        # a navigation (reload, a link followed) cancels the polls in flight: that is no failure
        if failure != "net::ERR_ABORTED":
            self._note(f"request failed: {request.method} {request.url}: {failure}")

    def _requested(self, request: Request) -> None:
        where = urlsplit(request.url)
        if where.scheme in ("http", "https", "ws", "wss") and where.hostname != "127.0.0.1":
            self._note(f"request outside 127.0.0.1: {request.method} {request.url}")

    def _answered(self, response: Response) -> None:
        if response.status >= 400 and not self._is_allowed(response.status, response.url):
            self._note(f"answer {response.status}: {response.request.method} {response.url}")


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


OpenPage = Callable[..., Page]


@pytest.fixture
def open_page(browser: Browser, browser_log: BrowserLog) -> Iterator[OpenPage]:
    """Opens a page in a new browser context (keyword arguments: the context's options, such
    as `java_script_enabled=False`), watched by `browser_log`; at the end of the test, fails
    it if anything went wrong in any of them."""
    contexts: list[BrowserContext] = []

    def open_one(**options: Any) -> Page:
        # times are shown in UTC, as the tests work them out, whatever this machine's zone
        settings: dict[str, Any] = {"viewport": WIDE, "timezone_id": "UTC", **options}
        context = browser.new_context(**settings)
        contexts.append(context)
        page = context.new_page()
        browser_log.watch(page)
        return page

    yield open_one
    browser_log.watching = False  # closing cancels what is in flight
    for context in contexts:
        context.close()
    if browser_log.problems:
        pytest.fail("the page went wrong:\n" + "\n".join(f"  {p}" for p in browser_log.problems))


@pytest.fixture
def page(open_page: OpenPage) -> Page:
    """A page with scripts, 1280 by 900 pixels."""
    return open_page()


UPDATED = re.compile(r"Updated \d\d:\d\d:\d\d")


def show(page: Page, url: str) -> None:
    """Go to `url` and wait for the page's script to have shown it (the server's HTML comes
    first): then what is clicked is what stays."""
    page.goto(url)
    expect(page.locator("#live-status")).to_have_text(UPDATED)


def reload_shown(page: Page) -> None:
    page.reload()
    expect(page.locator("#live-status")).to_have_text(UPDATED)


Shoot = Callable[[Page, str], None]


@pytest.fixture
def shoot(tmp_path: Path) -> Shoot:
    """Takes the whole page as it is, 1280 and 400 pixels wide, as NAME-1280.png and
    NAME-400.png in the folder SERENO_SCREENSHOTS names (docs/screenshots to update the
    documentation's), else in the test's temporary folder."""
    folder = Path(os.environ.get("SERENO_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        was = page.viewport_size
        for size in (WIDE, NARROW):
            page.set_viewport_size(size)  # type: ignore[arg-type]
            path = folder / f"{name}-{size['width']}.png"
            page.screenshot(path=path, full_page=True, animations="disabled")
            assert path.stat().st_size > 0
        if was is not None:
            page.set_viewport_size(was)

    return take


# -- the service ------------------------------------------------------------------------------


def scenario_minutes(first: int, end: int, minute_0: int) -> list[dict[str, Any]]:
    """The scenario's events of minutes `first` to `end` - 1, moved so that minute 0 starts
    at `minute_0`."""
    records = [json.loads(line) for line in SCENARIO.read_text(encoding="utf-8").splitlines()]
    shift = minute_0 - SCENARIO_T0
    return [
        {**record, "timestamp": record["timestamp"] + shift}
        for record in records
        if first <= (record["timestamp"] - SCENARIO_T0) // 60 < end
    ]


@dataclass
class PageService:
    """`sereno serve` with the packaged rules, told of alerts through the `webhook`, fed the
    scenario's minutes by `sereno push` (`minute_0`: when its minute 0 starts)."""

    server: Server
    webhook: HttpReceiver
    folder: Path
    minute_0: int
    token: str | None = None
    pushed: int = 0  # the minutes pushed so far

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers())

    def api_until(self, path: str, done: Callable[[Any], bool], timeout: float = 10) -> Any:
        """The JSON answer of GET `path` once `done` holds of it; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get(path)
            if answer.status_code == 200 and done(answer.json()):
                return answer.json()
            if time.monotonic() > deadline:
                pytest.fail(f"GET {path} waited {timeout} s in vain: {answer.text[:2000]}")
            time.sleep(0.05)

    def push(self, end: int) -> None:
        """Push the scenario's minutes from the first not yet pushed to `end` - 1."""
        events = self.folder / f"minutes-{self.pushed}-{end}.jsonl"
        records = scenario_minutes(self.pushed, end, self.minute_0)
        events.write_text("".join(json.dumps(record) + "\n" for record in records))
        options = ["--url", f"{self.url}/events"]
        if self.token is not None:
            options += ["--token-file", str(self.folder / "tokens")]
        pushed = run_sereno("push", events, *options)
        assert pushed.returncode == 0, pushed.stderr
        self.pushed = end

    def nothing_queued(self) -> None:
        line = f'sereno_notifications_queued{{receiver="{WEBHOOK}"}} 0.0'
        deadline = time.monotonic() + 10
        while line not in self.get("/metrics").text:
            if time.monotonic() > deadline:
                pytest.fail(f"the receiver {WEBHOOK} still has notices queued")
            time.sleep(0.05)


def start_page_service(folder: Path, token: str | None = None) -> PageService:
    """A service in `folder` (its state file, its config), needing `token` if given, fed the
    scenario's first minutes, once it shows what they make: the three alerts open and
    inbox05's episode over."""
    folder.mkdir(parents=True, exist_ok=True)
    options: list[str] = []
    if token is not None:
        (folder / "tokens").write_text(token + "\n")
        options = ["--token-file", str(folder / "tokens")]
    webhook = HttpReceiver()
    config = folder / "sereno.yaml"
    config.write_text(CONFIG.format(url=webhook.url))
    port = free_port()
    command = [
        sereno_executable(), "serve", "--listen", f"127.0.0.1:{port}",
        "--db", str(folder / "sereno.db"), "--alerts-log", str(folder / "alerts.log"),
        "--config", str(config), "--max-clock-skew", str(MAX_CLOCK_SKEW), *options,
    ]  # fmt: skip
    log = (folder / "serve.log").open("wb")  # a file, not a pipe that could fill up
    process = subprocess.Popen(command, stderr=log, cwd=folder)
    server = Server(process, f"http://127.0.0.1:{port}", folder / "alerts.log")
    # minute 5, the last pushed at first, is the minute before the one the tests start in
    minute_0 = (int(time.time()) // 60 - FIRST_PUSHED) * 60
    service = PageService(server, webhook, folder, minute_0, token)
    deadline = time.monotonic() + 20
    while not _ready(server):
        if time.monotonic() > deadline or process.poll() is not None:
            stop_page_service(service)
            pytest.fail(f"the service did not start:\n{(folder / 'serve.log').read_text()}")
        time.sleep(0.05)
    service.push(FIRST_PUSHED)
    service.api_until("/alerts", lambda alerts: len(alerts) == 3)
    service.api_until("/alerts/history", lambda records: any(r["ended"] for r in records))
    return service


def _ready(server: Server) -> bool:
    try:
        return server.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def stop_page_service(service: PageService) -> None:
    process = service.server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    service.webhook.stop()


def alert_ids(service: PageService) -> dict[str, str]:
    """The open alerts' ids, by server (by service for a majority alert)."""
    alerts: list[dict[str, Any]] = service.get("/alerts").json()
    return {alert["server"] or alert["service"]: alert["id"] for alert in alerts}


def told_of(body: Any) -> list[str]:
    """The servers (services, for a majority alert) of the alerts a webhook's body tells of."""
    labels = [alert["labels"] for alert in body["alerts"]]
    return [label.get("server") or label.get("service", "") for label in labels]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageService]:
    """The service of a test module, without tokens."""
    started = start_page_service(tmp_path_factory.mktemp("service"))
    yield started
    stop_page_service(started)
