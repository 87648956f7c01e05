"""Silences against the real service: made, listed, shown and expired over HTTP; a silenced
alert is recorded and listed, marked, but told to no receiver; when its silence is expired
while it still fires it is told then; silences outlive a kill -9; bad requests are 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from peers import HttpReceiver, changes_told

from conftest import Server, event, run_sereno

T0 = 1476057600
INBOX = "InboxService"


def disk(server: str, service: str, value: float, timestamp: float) -> dict[str, Any]:
    return event(server, service, "DiskUsedPercentage", value, timestamp)


def serve_with_receiver(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path], url: str
) -> Server:
    config = write_file(
        "sereno.yaml", f'receivers:\n  - {{name: ops, type: webhook, url: "{url}"}}\n'
    )
    return start_server("--config", str(config))


def silence(server: Server, **fields: Any) -> httpx.Response:
    body = {"created_by": "ana", "comment": "deploy", "duration": "1h", **fields}
    return httpx.post(f"{server.url}/api/silences", json=body)


def test_a_silenced_alert_is_listed_not_told_and_told_once_its_silence_is_expired(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    server = serve_with_receiver(start_server, write_file, http_receiver.url)
    made = silence(server, matchers=[f"service={INBOX}", 'server=~"inbox_0[12]"'])
    assert made.status_code == 201, made.text
    silenced = made.json()
    assert silenced["state"] == "active"
    assert silenced["matchers"] == ['service="InboxService"', 'server=~"inbox_0[12]"']
    assert len(silenced["id"]) >= 20  # not guessable
    # minute 0: a silenced disk and one that is not; minute 1 closes it
    server.post_lines(
        disk("inbox_01", INBOX, 0.95, T0 + 5),
        disk("pdf_01", "ReportPDFGenerator", 0.95, T0 + 5),
        disk("inbox_01", INBOX, 0.95, T0 + 95),
        disk("pdf_01", "ReportPDFGenerator", 0.5, T0 + 95),
    )
    # minute 0 is evaluated: pdf_01 is told, inbox_01 is not, and nothing else is queued
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 1)
    server.metric_until('sereno_notifications_queued{receiver="ops"} 0.0')
    assert changes_told(http_receiver) == [("firing", "pdf_01", "fired")]
    alerts = server.alerts_until(lambda alerts: len(alerts) == 2)
    marks = {alert["server"]: alert["silenced_by"] for alert in alerts}
    assert marks == {"inbox_01": [silenced["id"]], "pdf_01": []}
    mark = f'<span class="mark mark-silenced" title="by {silenced["id"]}">silenced</span>'
    assert mark in server.get("/").text

    expired = httpx.delete(f"{server.url}/api/silences/{silenced['id']}")
    assert (expired.status_code, expired.json()["state"]) == (200, "expired")
    # the next minute evaluated (minute 1) tells of the alert it covered, still firing
    server.post_lines(disk("inbox_01", INBOX, 0.95, T0 + 155))
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 3)
    assert changes_told(http_receiver)[1:] == [
        ("resolved", "pdf_01", "resolved"),
        ("firing", "inbox_01", "unsilenced"),
    ]
    listed = server.get("/api/silences").json()
    assert [s["id"] for s in listed["expired"]] == [silenced["id"]]
    assert listed["active"] == listed["pending"] == []


def test_silences_outlive_a_kill_9(start_server: Callable[..., Server]) -> None:
    server = start_server()
    made = silence(server, matchers=["severity=MEDIUM"]).json()
    server.process.kill()
    server.process.wait()
    again = start_server()
    shown = again.get(f"/api/silences/{made['id']}").json()
    assert (shown["state"], shown["created_by"], shown["comment"]) == ("active", "ana", "deploy")


def test_bad_silences_are_refused_with_the_reason(start_server: Callable[..., Server]) -> None:
    server = start_server()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"matchers": ['service=~"("']}, 400, "invalid regular expression"),
        ({"matchers": []}, 400, "length >= 1 - at `$.matchers`"),
        ({"matchers": ['server=~".*"']}, 400, "matcher"),
        ({"matchers": ["service=a"], "duration": None}, 400, "either ends_at or duration"),
        ({"matchers": ["service=a"], "duration": "soon"}, 400, "at `$.duration`"),
        ({"matchers": ["service=a"], "ends_at": 1.0, "duration": None}, 400, "in the future"),
        ({"matchers": ["service=a"], "colour": "red"}, 400, "colour"),
    ]
    for fields, status, reason in cases:
        answer = silence(server, **fields)
        assert answer.status_code == status, (fields, answer.text)
        assert reason in answer.json()["error"], (fields, answer.text)
    not_json = httpx.post(f"{server.url}/api/silences", content=b"\xff")
    assert not_json.status_code == 400
    assert httpx.get(f"{server.url}/api/silences/nope").status_code == 404
    assert httpx.delete(f"{server.url}/api/silences/nope").status_code == 404
    made = silence(server, matchers=["service=a"]).json()
    assert httpx.delete(f"{server.url}/api/silences/{made['id']}").status_code == 200
    again = httpx.delete(f"{server.url}/api/silences/{made['id']}")
    assert (again.status_code, "already expired" in again.json()["error"]) == (409, True)


def test_sereno_silence_makes_lists_and_expires_silences(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret\n")
    server = start_server("--token-file", str(tokens))
    reach = ["--url", server.url, "--token-file", str(tokens)]
    made = run_sereno(
        "silence", "add", f"service={INBOX}", 'server=~"inbox_0[12]"', "--for", "1h",
        "--comment", "deploy", "--author", "ana", *reach,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    silence_id = made.stdout.strip()
    assert made.stderr.startswith(
        f'sereno: silence {silence_id} made: service="InboxService", server=~"inbox_0[12]" from '
    )
    assert made.stderr.endswith(", by ana: deploy (2 matchers)\n")
    listed = run_sereno("silence", "list", *reach)
    assert listed.stdout.startswith(f"{silence_id}  active   service=")
    assert listed.stderr == "sereno: 1 silence\n"
    expired = run_sereno("silence", "expire", silence_id, *reach)
    assert (expired.returncode, expired.stderr) == (0, f"sereno: silence {silence_id} expired\n")
    assert run_sereno("silence", "list", *reach).stderr == "sereno: 0 silences\n"
    everything = run_sereno("silence", "list", "--all", "--format", "json", *reach)
    [shown] = [json.loads(line) for line in everything.stdout.splitlines()]
    assert (shown["id"], shown["state"]) == (silence_id, "expired")
    again = run_sereno("silence", "expire", silence_id, *reach)
    assert again.returncode == 2
    assert again.stderr.startswith("sereno: ") and "409: silence" in again.stderr
    assert again.stderr.count("\n") == 1


def test_sereno_silence_says_what_is_wrong_in_one_line(start_server: Callable[..., Server]) -> None:
    server = start_server()
    bad = run_sereno(
        "silence", "add", "server=~(", "--for", "1h", "--comment", "x", "--url", server.url
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("sereno: matcher 'server=~(': invalid regular expression")
    unreachable = run_sereno("silence", "list", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("sereno: cannot reach http://127.0.0.1:9/api/silences")
    assert unreachable.stderr.count("\n") == 1
    no_zone = run_sereno("silence", "add", "a=b", "--until", "2026-11-29T18:00", "--comment", "x")
    assert no_zone.returncode == 2 and "has no time zone" in no_zone.stderr
