"""The skeleton every view shares: the head, the navigation between views, the live status
line that the script keeps, and `<main>` holding the view."""

from __future__ import annotations

from sereno.serve.page.markup import esc

NAV = (
    ("alerts", "Alerts"),
    ("fleet", "Fleet"),
    ("history", "History"),
    ("silences", "Silences"),
    ("receivers", "Receivers"),
)
REFRESH_SECONDS = 10  # without scripts, the page reloads itself this often


def skeleton(title: str, view: str, main: str, tokens_required: bool, status: str = "") -> str:
    """A whole page: `main` is the view's HTML, `status` the live status line."""
    current = ' aria-current="page"'
    links = " ".join(
        f'<a href="/?view={name}"{current if name == view else ""}>{label}</a>'
        for name, label in NAV
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>
<script src="/static/app.js" defer></script></head>
<body data-tokens-required="{"true" if tokens_required else "false"}">
<a class="skip" href="#main">Skip to content</a>
<header><h1>Sereno</h1><nav aria-label="Views">{links}</nav>
<p id="live-status" role="status" aria-live="polite">{esc(status)}</p></header>
<main id="main" data-view="{esc(view)}" tabindex="-1">
{main}
</main>
</body></html>
"""


def token_needed() -> str:
    """What `<main>` holds for a request without a valid token: no data."""
    return (
        '<p class="note">An access token is needed to see the alerts. With scripts on, the '
        "page asks for one; without them, send it in an <code>Authorization: Bearer</code> "
        "header.</p>"
    )


def refused(reason: str) -> str:
    """What `<main>` holds for a query that is not one."""
    return f'<p class="note error">Cannot show this page: {esc(reason)}.</p>'
