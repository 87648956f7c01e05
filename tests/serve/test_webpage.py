"""The web page's files and its query against the real service: the script and the style
sheet as the package ships them, with a validator; unknown names and paths out of the folder
are 404s; the icon."""

from __future__ import annotations

from collections.abc import Callable

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
