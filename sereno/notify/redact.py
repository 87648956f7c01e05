"""Receivers' URLs as they may be shown: in `sereno check`, `sereno notify-test`, the
service's standard error and config errors, never with the credentials they carry.

A URL's user and password, its query (tokens such as `?key=...`) and fragment are secrets;
for Slack the whole path is (an incoming webhook's URL is its only credential).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SECRET = "<secret>"


def shown_url(url: str, secret_path: bool = False) -> str:
    """`url` as scheme://host[:port]/path, with any user and password, query and fragment
    (and, with `secret_path`, the path) replaced by <secret>."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return SECRET  # not a URL we can take apart: any of it may be the secret
    credentials, _, host = parts.netloc.rpartition("@")
    shown = f"{parts.scheme}://{SECRET + '@' if credentials else ''}{host}"
    if secret_path:
        return f"{shown}/{SECRET}"
    shown += parts.path
    if parts.query:
        shown += f"?{SECRET}"
    if parts.fragment:
        shown += f"#{SECRET}"
    return shown
