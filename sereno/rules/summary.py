"""A rule's `summary:` template: the fields it may use by the rule's kind, the defaults, and
the check made when the rules are loaded, so that a notification is never the place a typo
shows. Templates are Python format strings over an alert's fields (`{server} is at
{value:.0%}`); `sereno.notify.summary` fills them in.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

_COMMON = ("rule", "severity", "service", "timestamp", "value")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "per-server": (*_COMMON, "server", "component", "threshold"),
    "majority": (*_COMMON, "component", "threshold", "matched", "active", "servers"),
    "absent": (*_COMMON, "server", "last_seen"),
}
"""The fields a template may use, by the rule's kind."""

DEFAULT_TEMPLATES: Mapping[str, str] = {
    "per-server": "{component} is {value} on {server} ({service})",
    "majority": "{component} is up to {value} on {matched} of the {active} active servers of "
    "{service} (threshold {threshold})",
    "absent": "{server} ({service}) has sent nothing for {value:.0f}s",
}

_EXAMPLES: Mapping[str, object] = {
    "rule": "a rule",
    "severity": "HIGH",
    "service": "a service",
    "server": "a server",
    "component": "a component",
    "threshold": "4.0",
    "servers": "a, b",
    "timestamp": 1476057600,
    "value": 0.5,
    "matched": 2,
    "active": 3,
    "last_seen": 1476057600,
}


def template_problem(template: str, kind: str) -> str | None:
    """What is wrong with `template` for a rule of `kind`, or None if it is good."""
    allowed = FIELDS[kind]
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        return f"not a valid template: {error}"
    for name in names:
        if name not in allowed:
            return (
                f"unknown field {{{name}}} (a {kind} rule's alerts have: "
                + ", ".join(f"{{{field}}}" for field in allowed)
                + ")"
            )
    try:
        template.format_map({name: _EXAMPLES[name] for name in allowed})
    except (ValueError, TypeError) as error:
        return f"not a valid template: {error}"
    return None
