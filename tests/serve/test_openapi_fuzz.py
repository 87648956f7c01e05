"""The API fuzzed against its own OpenAPI document (schemathesis): every operation, every
check. No 5xx, no crash, and every answer as documented, for valid and invalid requests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from peers import HttpReceiver

from conftest import Server, event, json_lines

SEED = 20161010
EXAMPLES = 100  # per operation: the two runs take about 20 s on two cores


# A silence's matchers are strings whose every rule JSON Schema cannot say (a regex that
# compiles; a matcher that does not select every alert): for that one operation a 400 for
# schema-valid data is an accepted answer, and most random matchers are refused, which is
# no sign of a schema that says too little. The silence routes by id are given the id of a
# silence made beforehand, and the acknowledgement routes the id of an open alert, so that
# they are not only ever answered 404; the test send, the name of the service's receiver.
CONFIG = """
warnings = ["missing_auth", "missing_test_data"]

[[operations]]
include-name = "POST /api/silences"
checks.positive_data_acceptance.expected-statuses = [201, 400, 401]

[[operations]]
include-path-regex = "^/api/silences/"
parameters = {{ silence_id = "{silence_id}" }}

[[operations]]
include-path-regex = "^/api/alerts/"
parameters = {{ alert_id = "{alert_id}" }}

[[operations]]
include-path-regex = "^/api/receivers/"
parameters = {{ name = "{receiver}" }}
"""


def schemathesis(server: Server, workdir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`st run` in `workdir`, where it keeps its cache (of failures, to replay first) and
    finds its config."""
    headers = dict([option.split(": ", 1) for option in options[1::2]])
    made = httpx.post(
        f"{server.url}/api/silences",
        json={"matchers": ["service=fuzz"], "duration": "1h", "created_by": "t", "comment": "t"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    full_disk = event(component="DiskUsedPercentage", value=0.95)
    server.post(json_lines(full_disk), "application/x-ndjson", **headers)
    [alert] = server.alerts_until(bool, **headers)
    [receiver] = server.get("/api/receivers", **headers).json()
    config = CONFIG.format(
        silence_id=made.json()["id"], alert_id=alert["id"], receiver=receiver["name"]
    )
    (workdir / "schemathesis.toml").write_text(config)
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--no-color",
        "--request-timeout",
        "10",
        *options,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=workdir
    )


def assert_no_failure(server: Server, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No issues found" in result.stdout, result.stdout
    said = server.stop()  # still running: no request stopped it
    assert "Traceback" not in said, said


def test_the_api_keeps_to_its_openapi_document(
    start_server: Callable[..., Server], tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    server = start_server("--webhook", http_receiver.url)
    assert_no_failure(server, schemathesis(server, tmp_path))


def test_the_api_with_tokens_keeps_to_its_openapi_document(
    start_server: Callable[..., Server], tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret\n")
    server = start_server("--token-file", str(tokens), "--webhook", http_receiver.url)
    # the document declares the bearer scheme: ignored_auth checks that a request without
    # the token, or with a wrong one, is refused
    result = schemathesis(server, tmp_path, "--header", "Authorization: Bearer s3cret")
    assert_no_failure(server, result)
