"""Shared test helpers: finding the example files in `data/`, building events, running the
installed `sereno` command, and starting `sereno serve` on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("peers")  # before it is imported, here and as a plugin
from peers import free_port  # noqa: E402

from sereno.engine.alerts import Alert  # noqa: E402
from sereno.engine.engine import Engine  # noqa: E402
from sereno.engine.windows import Window  # noqa: E402

pytest_plugins = ["peers"]  # the real receivers notifications are sent to, as fixtures

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"  # the shared example files; see data/README.md
SAMPLE = REPO / "sample.json"  # the sample shipped with sereno


def expected_lines(name: str) -> list[str]:
    """The lines of `data/expected/NAME`, worked out by hand."""
    return (DATA / "expected" / name).read_text(encoding="utf-8").splitlines()


def example_files(folder: str, kind: str = "*", suffix: str = "yaml") -> list[Path]:
    """The example files of `data/FOLDER` (`rules`, `configs` or `events`) of a kind,
    `NAME.good.SUFFIX` or `NAME.bad.SUFFIX` (both if none is given), in name order; `suffix` is
    a pattern: `json*` is both `.json` and `.jsonl`."""
    return sorted((DATA / folder).glob(f"*.{kind}.{suffix}"))


def refusal_messages(path: Path) -> list[str]:
    """The messages refusing `NAME.bad.yaml` (or `.json`, `.jsonl`), from `NAME.bad.txt` beside
    it, with its path."""
    text = path.with_suffix(".txt").read_text(encoding="utf-8")
    return text.replace("{path}", str(path)).splitlines()


FAILING_MINUTE = 1476057600  # the minute `engine_failing_on_a_minute` makes the engine fail on


@pytest.fixture
def engine_failing_on_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine fails on the minute at `FAILING_MINUTE`, and only on it."""
    evaluate = Engine.evaluate

    def evaluate_but_the_failing_minute(engine: Engine, window: Window) -> list[Alert]:
        if window.start == FAILING_MINUTE:
            raise OverflowError("the engine failed on this minute")
        return evaluate(engine, window)

    monkeypatch.setattr(Engine, "evaluate", evaluate_but_the_failing_minute)


def sereno_executable() -> str:
    """The `sereno` console script installed beside this Python (a venv's bin/)."""
    beside = Path(sys.executable).parent / "sereno"
    if beside.exists():
        return str(beside)
    found = shutil.which("sereno")
    if found is None:
        pytest.fail("the sereno command is not installed: pip install '.[test]' first")
    return found


def run_sereno(
    *args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed command as a user would (never on a terminal); decode its output."""
    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    environment.update(env or {})
    result = subprocess.run(
        [sereno_executable(), *map(str, args)],
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", errors="replace"),
        result.stderr.decode("utf-8", errors="replace"),
    )


def event(
    server: str = "inbox_production01",
    service: str = "InboxService",
    component: str = "Load5mAvg",
    value: Any = 1.0,
    timestamp: float = 1476057600,
    active: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "server": server,
        "service": service,
        "component": component,
        "value": value,
        "timestamp": timestamp,
        "active": active,
        **extra,
    }


def disk_in_minute(
    server: str, value: float, minute: int, service: str = "InboxService"
) -> dict[str, Any]:
    """A disk sample of `server` at second 35 of the minute `minute` after 2016-10-10 00:00
    UTC: it also closes the minute before (allowed lateness 30 s)."""
    return event(server, service, "DiskUsedPercentage", value, 1476057600 + 60 * minute + 35)


def raw_event(value: object, timestamp: object, server: str = "a") -> str:
    """A load event as raw JSON text, so that numbers reach the reader exactly as written
    (1e308, 2**64, -1e20) rather than as Python would print them."""
    return (
        f'{{"server":"{server}","service":"S","component":"Load5mAvg",'
        f'"value":{value},"timestamp":{timestamp},"active":true}}'
    )


def sample_events() -> list[dict[str, Any]]:
    """The shipped sample's events, in time order."""
    records: list[dict[str, Any]] = json.loads(SAMPLE.read_text())
    return sorted(records, key=lambda record: record["timestamp"])


def json_lines(*records: dict[str, Any] | str) -> bytes:
    """JSON Lines: dicts are encoded, strings are written as they are (for broken lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    def write(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return write


class Server:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def post(
        self, body: bytes, content_type: str = "application/json", **headers: str
    ) -> httpx.Response:
        """POST /events; see `post_lines` for JSON Lines."""
        return httpx.post(
            f"{self.url}/events", content=body, headers={"content-type": content_type, **headers}
        )

    def post_lines(self, *records: dict[str, Any]) -> None:
        answer = self.post(json_lines(*records), "application/x-ndjson")
        assert answer.status_code == 202, answer.text

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=headers)

    def metric_until(self, line: str) -> str:
        """The metrics page, once it has `line` (or after 10 s)."""
        deadline = time.monotonic() + 10
        while line not in (page := self.get("/metrics").text) and time.monotonic() < deadline:
            time.sleep(0.05)
        return page

    def stop(self) -> str:
        """SIGTERM; what it said on standard error."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=20) == 0
        assert self.process.stderr is not None
        return self.process.stderr.read().decode()

    def alerts_until(
        self, done: Callable[[list[dict[str, Any]]], bool], **headers: str
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while True:
            alerts: list[dict[str, Any]] = self.get("/alerts", **headers).json()
            if done(alerts) or time.monotonic() > deadline:
                return alerts
            time.sleep(0.05)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        """A server in `tmp_path`: its state file (by default in the working directory) and
        its alerts log are those of the servers started before it in the same test."""
        port = free_port()
        log = tmp_path / "alerts.log"
        command = [sereno_executable(), "serve", "--listen", f"127.0.0.1:{port}"]
        process = subprocess.Popen(
            [*command, "--alerts-log", str(log), *args], stderr=subprocess.PIPE, cwd=tmp_path
        )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        return ready_or_fail(server, 20, "the server")

    yield start
    stop_servers(started)


def ready_or_fail(server: Server, seconds: float, what: str) -> Server:
    """`server` once its /readyz answers 200; the test fails if it does not within `seconds`
    (or its process ends first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if server.get("/readyz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not start")


def stop_servers(started: list[Server]) -> None:
    """Kill the servers a test started and left running."""
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()
