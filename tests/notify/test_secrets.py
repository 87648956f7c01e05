"""Receivers' credentials are never shown: `sereno check --config`, `sereno notify-test`,
config errors and `sereno serve`'s standard error show <secret> in their place; the webhook's
URL can be kept off the command line (`--webhook-file`, `SERENO_WEBHOOK_URL`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from peers import HttpReceiver, free_port

from sereno.notify.config import ReceiverSpec
from sereno.notify.redact import shown_url

from conftest import Server, event, run_sereno

T0 = 1476057600
PASSWORD, TOKEN, SLACK_KEY, HEADER = "hunter2pw", "tok3nvalue", "XXslackKEYXX", "hdrs3cret"
SECRETS = (PASSWORD, TOKEN, SLACK_KEY, HEADER)


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output


def test_urls_are_shown_without_their_credentials() -> None:
    cases = [
        ("https://hooks.example.com/sereno", False, "https://hooks.example.com/sereno"),
        (
            f"https://ops:{PASSWORD}@hooks.example.com:8443/in?token={TOKEN}#x",
            False,
            "https://<secret>@hooks.example.com:8443/in?<secret>#<secret>",
        ),
        (
            f"https://hooks.slack.com/services/T0/B0/{SLACK_KEY}",
            True,
            "https://hooks.slack.com/<secret>",
        ),
        ("http://127.0.0.1:9093", False, "http://127.0.0.1:9093"),
        (f"hooks.slack.com/services/T0/B0/{SLACK_KEY}", True, "<secret>"),  # no scheme
        ("ftp://x", False, "ftp://x"),
    ]
    assert [shown_url(url, secret_path) for url, secret_path, _ in cases] == [
        shown for _, _, shown in cases
    ]
    spec = ReceiverSpec(
        "ops", "webhook", f"https://a:{PASSWORD}@h/?t={TOKEN}", headers={"X-Key": HEADER}
    )
    assert_no_secret(repr(spec), str(spec))


def secret_config(write_file: Callable[[str, str], Path], webhook: str, slack: str) -> Path:
    password = write_file("smtp-password", f"{PASSWORD}\n")
    return write_file(
        "sereno.yaml",
        f"""
receivers:
  - {{name: ops, type: webhook, url: "{webhook}", headers: {{Authorization: "Bearer {HEADER}"}}}}
  - {{name: chat, type: slack, url: "{slack}", timeout: 2s}}
  - {{name: am, type: alertmanager, url: "http://am:{PASSWORD}@127.0.0.1:9093/?k={TOKEN}"}}
  - {{name: mail, type: email, smarthost: "127.0.0.1:{free_port()}", from: s@example.com,
     to: [o@example.com], username: sereno, password_file: {password}, starttls: false}}
""",
    )


def test_check_lists_receivers_without_their_credentials(
    write_file: Callable[[str, str], Path],
) -> None:
    config = secret_config(
        write_file,
        f"https://ops:{PASSWORD}@hooks.example.com/sereno?token={TOKEN}",
        f"https://hooks.slack.com/services/T000/B000/{SLACK_KEY}",
    )
    result = run_sereno("check", "--config", config)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert "  ops (webhook): https://<secret>@hooks.example.com/sereno?<secret>" in lines
    assert "  chat (slack): https://hooks.slack.com/<secret>" in lines
    assert "  am (alertmanager): http://<secret>@127.0.0.1:9093/?<secret>" in lines


def test_config_errors_do_not_show_the_credentials_of_a_bad_url(
    write_file: Callable[[str, str], Path],
) -> None:
    config = write_file(
        "sereno.yaml",
        f"""receivers:
  - {{name: ops, type: webhook, url: "ftp://ops:{PASSWORD}@example.com/in?token={TOKEN}"}}
  - {{name: chat, type: slack, url: "hooks.slack.com/services/T0/B0/{SLACK_KEY}"}}
""",
    )
    result = run_sereno("check", "--config", config)
    assert result.returncode == 2
    assert_no_secret(result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"{config}:2:37: receiver 'ops': key 'url': expected an http:// or https:// URL, "
        "got 'ftp://<secret>@example.com/in?<secret>'",
        f"{config}:3:36: receiver 'chat': key 'url': expected an http:// or https:// URL, "
        "got '<secret>'",
        "sereno: the config file was refused",
    ]
    shortcut = run_sereno("notify-test", "--webhook", f"ftp://a:{PASSWORD}@example.com/")
    assert shortcut.returncode == 2
    assert_no_secret(shortcut.stdout, shortcut.stderr)
    assert shortcut.stderr == (
        "--webhook: expected an http:// or https:// URL, got 'ftp://<secret>@example.com/'\n"
        "sereno: the config file was refused\n"
    )


def test_notify_test_names_failing_receivers_without_their_credentials(
    write_file: Callable[[str, str], Path], http_receiver: HttpReceiver
) -> None:
    http_receiver.answer(500)
    port = http_receiver.port
    config = secret_config(
        write_file,
        f"http://ops:{PASSWORD}@127.0.0.1:{port}/hook?token={TOKEN}",
        f"http://127.0.0.1:{free_port()}/services/T000/B000/{SLACK_KEY}",
    )
    result = run_sereno("notify-test", "--config", config)
    assert result.returncode == 1
    assert_no_secret(result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"ops (webhook): FAILED: http://<secret>@127.0.0.1:{port}/hook?<secret> answered 500 "
        "Internal Server Error: status 500"
    )
    assert lines[1].startswith("chat (slack): FAILED: http://127.0.0.1:")
    assert lines[1].split(": ")[2].endswith("/<secret>")
    assert lines[3].startswith("mail (email): FAILED: smtp://127.0.0.1:")


def test_the_webhook_can_be_given_in_a_file_or_the_environment(
    write_file: Callable[[str, str], Path], http_receiver: HttpReceiver
) -> None:
    url = f"{http_receiver.url}?token={TOKEN}"
    in_file = write_file("webhook-url", f"\n  {url}  \n\nignored\n")
    from_file = run_sereno("notify-test", "--webhook-file", in_file)
    assert (from_file.returncode, from_file.stdout) == (0, "webhook (webhook): accepted\n")
    from_environment = run_sereno("notify-test", env={"SERENO_WEBHOOK_URL": url})
    assert (from_environment.returncode, from_environment.stdout) == (
        0,
        "webhook (webhook): accepted\n",
    )
    assert [request.path for request in http_receiver.requests] == [f"/hook?token={TOKEN}"] * 2
    empty = run_sereno("notify-test", "--webhook-file", write_file("empty", "\n \n"))
    assert (empty.returncode, empty.stderr) == (
        2,
        f"sereno: --webhook-file: {in_file.parent / 'empty'} holds no URL\n",
    )
    missing = run_sereno("serve", "--webhook-file", in_file.parent / "nonexistent")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"sereno: --webhook-file: cannot read {in_file.parent / 'nonexistent'}: "
        "No such file or directory\n",
    )
    both = run_sereno("notify-test", "--webhook", url, "--webhook-file", in_file)
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert TOKEN not in both.stderr


def wait_until_failing(server: Server, receiver: str) -> None:
    series = f'sereno_notifications_failed_total{{receiver="{receiver}"}} '
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page = server.get("/metrics").text
        if any(
            line.startswith(series) and float(line.split()[-1]) >= 1 for line in page.splitlines()
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"{receiver} has not failed yet")


def test_serve_logs_failing_receivers_without_their_credentials(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.answer(500)
    port = http_receiver.port
    config = write_file(
        "sereno.yaml",
        f"""
defaults: {{retry_backoff: 50ms, retry_backoff_max: 200ms, timeout: 1s}}
receivers:
  - {{name: chat, type: slack, url: "http://127.0.0.1:{port}/services/T0/B0/{SLACK_KEY}"}}
""",
    )
    webhook = write_file("webhook-url", f"http://ops:{PASSWORD}@127.0.0.1:{port}/hook?t={TOKEN}")
    server = start_server("--config", str(config), "--webhook-file", str(webhook))
    server.post_lines(
        event(component="DiskUsedPercentage", value=0.95, timestamp=T0),
        event(component="DiskUsedPercentage", value=0.95, timestamp=T0 + 120),
    )
    for receiver in ("chat", "webhook"):
        wait_until_failing(server, receiver)
    said = server.stop()
    assert_no_secret(said)
    assert f"sereno: notify chat: http://127.0.0.1:{port}/<secret> answered 500" in said
    assert (
        f"sereno: notify webhook: http://<secret>@127.0.0.1:{port}/hook?<secret> answered 500"
        in said
    )
