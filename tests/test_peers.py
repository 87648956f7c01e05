"""The real peers of tests/peers.py behave as the notification tests rely on."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import httpx
import peers
import pytest
from peers import (
    HOST,
    Alertmanager,
    HttpReceiver,
    SmtpServer,
    SmtpServerFactory,
    free_port,
)


def test_free_port_can_be_listened_on() -> None:
    with socket.socket() as sock:
        sock.bind((HOST, free_port()))
        sock.listen()


# -- HttpReceiver ---------------------------------------------------------------------------------


def test_http_receiver_records_requests(http_receiver: HttpReceiver) -> None:
    before = time.monotonic()
    response = httpx.post(http_receiver.url, json={"text": "hi"}, headers={"X-Token": "t0k"})
    assert (response.status_code, response.text) == (200, "ok")
    httpx.put(f"{http_receiver.url}?try=2", content=b"not json")

    first, second = http_receiver.requests
    assert (first.method, first.path, first.status) == ("POST", "/hook", 200)
    assert first.headers["content-type"] == "application/json"
    assert first.headers["x-token"] == "t0k"
    assert first.body == b'{"text":"hi"}'
    assert first.json == {"text": "hi"}
    assert before <= first.received_at <= second.received_at <= time.monotonic()
    assert (second.method, second.path, second.body, second.json) == (
        "PUT",
        "/hook?try=2",
        b"not json",
        None,
    )
    assert http_receiver.accepted() == [{"text": "hi"}, None]


def test_http_receiver_answers_the_status_it_is_told(http_receiver: HttpReceiver) -> None:
    http_receiver.answer(500)
    assert httpx.post(http_receiver.url, json={"n": 1}).status_code == 500
    http_receiver.answer(204)
    assert httpx.post(http_receiver.url, json={"n": 2}).status_code == 204

    assert [request.status for request in http_receiver.requests] == [500, 204]
    assert http_receiver.accepted() == [{"n": 2}]


def test_http_receiver_can_be_slow(http_receiver: HttpReceiver) -> None:
    http_receiver.delay(0.3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(http_receiver.url, json={"n": 1}, timeout=0.1)
    started = time.monotonic()
    assert httpx.post(http_receiver.url, json={"n": 2}).status_code == 200
    assert time.monotonic() - started >= 0.3
    # Both arrived; the first one was answered too, though its client had given up.
    assert http_receiver.accepted() == [{"n": 1}, {"n": 2}]


def test_http_receiver_goes_down_and_up_on_the_same_port(http_receiver: HttpReceiver) -> None:
    url = http_receiver.url
    http_receiver.down()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json={"n": 1})
    http_receiver.up()
    assert http_receiver.url == url
    assert httpx.post(url, json={"n": 2}).status_code == 200
    assert http_receiver.accepted() == [{"n": 2}]


def test_http_receiver_wait_for(http_receiver: HttpReceiver) -> None:
    sender = threading.Timer(0.1, httpx.post, [http_receiver.url], {"json": {"late": True}})
    sender.start()
    http_receiver.wait_for(lambda receiver: receiver.accepted() == [{"late": True}])
    sender.join()

    with pytest.raises(pytest.fail.Exception, match=r"(?s)in vain.*POST /hook -> 200: \{'late'"):
        http_receiver.wait_for(lambda receiver: len(receiver.requests) == 2, timeout=0.1)


def test_http_receiver_stops_at_once_and_leaves_no_thread() -> None:
    threads = set(threading.enumerate())
    with HttpReceiver() as receiver:
        receiver.delay(60)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(receiver.url, json={}, timeout=0.1)
        started = time.monotonic()
    assert time.monotonic() - started < 1
    assert set(threading.enumerate()) == threads
    with pytest.raises(httpx.ConnectError):
        httpx.post(receiver.url, json={})


# -- Alertmanager ---------------------------------------------------------------------------------


def test_alertmanager_lists_firing_alerts_but_not_resolved_ones(alertmanager: Alertmanager) -> None:
    now = datetime.now(timezone.utc)
    alert = {
        "labels": {"alertname": "Down", "server": "web01"},
        "annotations": {"summary": "web01 is down"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
    }
    httpx.post(f"{alertmanager.url}/api/v2/alerts", json=[alert]).raise_for_status()

    (listed,) = alertmanager.alerts()
    assert listed["labels"] == alert["labels"]
    assert listed["annotations"] == alert["annotations"]
    assert listed["status"]["state"] == "active"
    assert alertmanager.alerts(active=True, matchers=['server="web01"']) == [listed]
    assert alertmanager.alerts(matchers=['server="db01"']) == []
    assert alertmanager.alerts(active=False) == []

    resolved = {**alert, "endsAt": (now - timedelta(seconds=1)).isoformat()}
    httpx.post(f"{alertmanager.url}/api/v2/alerts", json=[resolved]).raise_for_status()

    # A resolved alert is not listed at all (no "resolved" state), whatever the flags.
    assert alertmanager.alerts() == []
    assert alertmanager.alerts(active=False) == []
    assert alertmanager.alerts(active=True, silenced=True, inhibited=True, unprocessed=True) == []


def test_alertmanager_missing_is_a_failure_not_a_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="install the Debian package"):
        Alertmanager(tmp_path)


def test_alertmanager_that_does_not_start_shows_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "ALERTMANAGER_CONFIG", "route: [")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)exited with status 1.*alertmanager.yml"):
        Alertmanager(tmp_path)


# -- SmtpServer -----------------------------------------------------------------------------------


def mail(subject: str = "web01 is down") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sereno@example.org"
    message["To"] = "ops@example.org, oncall@example.org"
    message["Subject"] = subject
    message.set_content("Load5mAvg is 12.5")
    return message


def smtp_client(server: SmtpServer) -> smtplib.SMTP:
    return smtplib.SMTP(server.host, server.port, local_hostname="localhost", timeout=5)


def test_smtp_server_receives_mail(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server()
    assert server.ca_file is None
    with smtp_client(server) as client:
        client.send_message(mail())

    (received,) = server.wait_for_messages(1)
    assert received.mail_from == "sereno@example.org"
    assert received.rcpt_tos == ["ops@example.org", "oncall@example.org"]
    assert received.message["Subject"] == "web01 is down"
    assert received.message.get_content() == "Load5mAvg is 12.5\n"
    assert server.messages == [received]


def test_smtp_server_with_starttls_and_login(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server(starttls=True, credentials=("sereno", "s3cret"))
    with smtp_client(server) as client:
        with pytest.raises(smtplib.SMTPSenderRefused, match="STARTTLS"):
            client.send_message(mail("before STARTTLS"))
        client.starttls(context=ssl.create_default_context(cafile=server.ca_file))
        with pytest.raises(smtplib.SMTPSenderRefused, match="Authentication required"):
            client.send_message(mail("before login"))
        client.login("sereno", "s3cret")
        client.send_message(mail())

    (received,) = server.wait_for_messages(1)
    assert received.message["Subject"] == "web01 is down"


def test_smtp_server_refuses_wrong_credentials(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server(credentials=("sereno", "s3cret"))  # AUTH on a plain connection
    with smtp_client(server) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("sereno", "wrong")
        client.login("sereno", "s3cret")
        client.send_message(mail())
    assert len(server.wait_for_messages(1)) == 1


def test_smtp_server_wait_for_messages_fails_the_test(smtp_server: SmtpServerFactory) -> None:
    server = smtp_server()
    with pytest.raises(pytest.fail.Exception, match="0 mail"):
        server.wait_for_messages(1, timeout=0.1)


def test_smtp_server_stops_and_leaves_no_thread(tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    with SmtpServer(tmp_path) as server, smtp_client(server) as client:
        client.noop()
    assert set(threading.enumerate()) == threads
    with pytest.raises(ConnectionRefusedError):
        smtp_client(server)
