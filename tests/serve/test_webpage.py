"""The web page's files and its query against the real service: the script and the style
sheet as the package ships them, with a validator; unknown names and paths out of the folder
are 404s; the icon; a query that is not one is a 400 page with the reason; with tokens, the
page shows its data only to a request carrying one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import Server


def test_the_pages_files_are_served_with_their_types_and_a_validator(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    script = server.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.text.startswith('"use strict";')
    style = server.get("/static/style.css")
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert ".sev" in style.text
    again = server.get("/static/app.js", **{"if-none-match": script.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    for name in ("nope.js", "..%2Fapp.py", "%2E%2E%2F%2E%2E%2Fpyproject.toml", "app.js%00"):
        assert server.get(f"/static/{name}").status_code == 404, name
    assert server.get("/static/../serve/app.py").status_code == 404
    icon = server.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert "/static/{name}" not in server.get("/openapi.json").json()["paths"]


def test_a_query_that_is_not_one_is_a_400_page_with_the_reason(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    for query, reason in (
        ("view=admin", "no view is called &#x27;admin&#x27;"),
        ("view=alert&id=%3Cx%3E", "`id` must be an alert&#x27;s id: 10 hexadecimal digits"),
        ("view=history&since=soon", "`since` must be seconds since the epoch or ISO 8601"),
        ("state=asleep", "`state` is one of firing, no data, pending"),
    ):
        answer = httpx.get(f"{server.url}/?{query}")
        assert answer.status_code == 400, query
        assert answer.headers["content-type"].startswith("text/html")
        assert f'<p class="note error">Cannot show this page: {reason}' in answer.text


def test_with_tokens_the_page_and_its_files_are_open_but_its_data_needs_a_token(
    start_server: Callable[..., Server], write_file: Callable[[str, str], Path]
) -> None:
    tokens = write_file("tokens", "s3cret\n")
    server = start_server("--token-file", str(tokens))
    without = server.get("/?view=receivers")
    assert without.status_code == 200
    assert '<body data-tokens-required="true">' in without.text
    assert "An access token is needed to see the alerts" in without.text
    assert "events evaluated" not in without.text
    wrong = server.get("/?view=receivers", authorization="Bearer wrong")
    assert "An access token is needed to see the alerts" in wrong.text
    shown = server.get("/?view=receivers", authorization="Bearer s3cret").text
    assert '<tr><th scope="row">events evaluated</th>' in shown
    assert server.get("/static/app.js").status_code == 200
    assert server.get("/favicon.ico").status_code == 200
    assert server.get("/api/status").status_code == 401
