"""Which paths are open without a token, and which headers carry one."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from sereno.serve.auth import carries_token, is_open

TOKENS = frozenset({"s3cret", "other"})


@pytest.mark.parametrize(
    ("path", "open_"),
    [
        ("/", True),
        ("/healthz", True),
        ("/readyz", True),
        ("/favicon.ico", True),
        ("/static/app.js", True),
        ("/static/{name}", True),  # as the OpenAPI document names the route
        ("/static/", False),
        ("/static/..", False),
        ("/static/a/b.js", False),
        ("/staticx/app.js", False),
        ("/api/fleet", False),
        ("/alerts", False),
        ("//", False),
    ],
)
def test_the_page_its_files_and_the_health_checks_are_open(path: str, open_: bool) -> None:
    assert is_open(path) is open_


@pytest.mark.parametrize(
    ("headers", "carried"),
    [
        ({"authorization": "Bearer s3cret"}, True),
        ({"Authorization": "bearer other"}, True),
        ({"authorization": "Bearer wrong"}, False),
        ({"authorization": "Basic s3cret"}, False),
        ({"authorization": "Bearer"}, False),
        ({"authorization": "Bearer s3cret "}, False),
        ({"authorization": "Bearer sécret"}, False),
        ({}, False),
    ],
)
def test_a_bearer_header_carries_a_token_only_if_it_is_one_of_them(
    headers: dict[str, str], carried: bool
) -> None:
    assert carries_token(Headers(headers), TOKENS) is carried
    assert carries_token({k.lower(): v for k, v in headers.items()}, TOKENS) is carried
