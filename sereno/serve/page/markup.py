"""The small pieces every view is made of: escaping, times and numbers for people, a
severity's colours, and tables that scroll sideways on a narrow screen."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from html import escape

from sereno.serve.answers import RulesAnswer

_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def esc(text: object) -> str:
    """Text for an element's content or a quoted attribute (labels come from agents)."""
    return escape(str(text), quote=True)


def clock(timestamp: float) -> str:
    """`09:41:05`, in UTC."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%H:%M:%S")


def hour_minute(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%H:%M")


def when(timestamp: float) -> str:
    """`2026-11-29 09:41:05 UTC`, in a `<time>` element."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f'<time datetime="{moment.isoformat()}">{shown}</time>'


def ago(seconds: float) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def table(caption: str, heads: Iterable[str], rows: Iterable[str], classes: str = "data") -> str:
    """A table with a caption and column headers, in a wrapper that scrolls sideways when the
    screen is narrower than the table."""
    head = "".join(f'<th scope="col">{esc(name)}</th>' for name in heads)
    caption_html = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table class="{classes}">{caption_html}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def severity_colors(rules: RulesAnswer) -> dict[str, str]:
    """Each severity's colour, as written in the rules file (converted to `#rrggbb`)."""
    return {
        severity.name: severity.color
        for severity in rules.severities
        if severity.color is not None and _HEX_COLOR.fullmatch(severity.color)
    }


def sev_style(color: str | None) -> str:
    """The `style` attribute giving an element its severity's colour, and a text colour
    readable on it (black or white, whichever contrasts more)."""
    if color is None or not _HEX_COLOR.fullmatch(color):
        return ""
    return f' style="--sev: {color}; --sev-text: {readable_text(color)}"'


def readable_text(color: str) -> str:
    """Black or white, whichever has the higher WCAG contrast ratio on `color`."""
    channels = [int(color[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # contrast with black (L + 0.05) / 0.05 against with white 1.05 / (L + 0.05)
    return "#000000" if (luminance + 0.05) ** 2 >= 0.0525 else "#ffffff"


def sev_badge(severity: str, colors: dict[str, str]) -> str:
    return f'<span class="sev"{sev_style(colors.get(severity))}>{esc(severity)}</span>'


def mark(kind: str, text: str, title: str = "") -> str:
    title_attr = f' title="{esc(title)}"' if title else ""
    return f'<span class="mark mark-{kind}"{title_attr}>{esc(text)}</span>'


def options(values: Iterable[str], chosen: Iterable[str], blank: str | None = None) -> str:
    """A select's options, the chosen ones selected; `blank`: a first option meaning any."""
    picked = set(chosen)
    first = f'<option value="">{esc(blank)}</option>' if blank is not None else ""
    return first + "".join(
        f'<option value="{esc(value)}"{" selected" if value in picked else ""}>{esc(value)}'
        "</option>"
        for value in values
    )


def field(name: str, label: str, control: str) -> str:
    """A labelled form control; `control` has the id `f-NAME`."""
    return f'<div class="field"><label for="f-{name}">{esc(label)}</label>{control}</div>'
