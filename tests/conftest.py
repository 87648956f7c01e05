"""Shared test helpers: building events, and running the installed `sereno` command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["peers"]  # the real receivers notifications are sent to, as fixtures

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample.json"


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
