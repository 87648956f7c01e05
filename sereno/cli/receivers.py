"""The options that name the receivers: `--config`, `--webhook`, `--webhook-file`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sereno.cli.options import (
    InputError,
    add_config_option,
)
from sereno.notify.config import WebhookOption

WEBHOOK_ENV = "SERENO_WEBHOOK_URL"  # the webhook's URL, kept out of the command line


def add_receiver_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    webhook = parser.add_mutually_exclusive_group()
    webhook.add_argument(
        "--webhook",
        metavar="URL",
        help="also send every alert change to this webhook (Alertmanager's webhook JSON); "
        f"a URL with credentials is better given by --webhook-file or {WEBHOOK_ENV}, which "
        "other users cannot see in the list of processes",
    )
    webhook.add_argument(
        "--webhook-file",
        metavar="FILE",
        help="the same, the URL read from the first non-blank line of FILE",
    )


def webhook_option(args: argparse.Namespace) -> WebhookOption | None:
    """The webhook of `--webhook URL`, `--webhook-file FILE` or else `SERENO_WEBHOOK_URL`."""
    if args.webhook is not None:
        return WebhookOption(args.webhook)
    if args.webhook_file is not None:
        return WebhookOption(_read_webhook_file(args.webhook_file), "--webhook-file")
    from_environment = os.environ.get(WEBHOOK_ENV, "").strip()
    return WebhookOption(from_environment, WEBHOOK_ENV) if from_environment else None


def _read_webhook_file(path: str) -> str:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid UTF-8 text"
        raise InputError(f"--webhook-file: cannot read {path}: {reason}") from None
    url = next((line.strip() for line in lines if line.strip()), None)
    if url is None:
        raise InputError(f"--webhook-file: {path} holds no URL")
    return url
