"""An alert told in one line: a rule's `summary:` template, or the default for its kind.

Templates are Python format strings over the alert's fields (`{server} is at {value:.0%}`),
checked when the rules are loaded, so that a notification is never the place a typo shows.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert, ServerAlert

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


def fields_of(alert: Alert, threshold: str | None) -> dict[str, object]:
    """The fields a template of the alert's rule may use."""
    fields: dict[str, object] = {
        "rule": alert.rule,
        "severity": alert.severity,
        "service": alert.service,
        "timestamp": alert.timestamp,
        "value": alert.value,
    }
    if isinstance(alert, ServerAlert):
        fields.update(server=alert.server, component=alert.component, threshold=threshold or "")
    elif isinstance(alert, MajorityAlert):
        fields.update(
            component=alert.component,
            threshold=alert.threshold,
            matched=alert.matched,
            active=alert.active,
            servers=", ".join(alert.matched_servers),
        )
    else:
        fields.update(server=alert.server, last_seen=alert.last_seen)
    return fields


def kind_of(alert: Alert) -> str:
    if isinstance(alert, AbsentAlert):
        return "absent"
    return "majority" if isinstance(alert, MajorityAlert) else "per-server"


def summarize(alert: Alert, template: str | None, threshold: str | None = None) -> str:
    """The alert in one line, by its rule's template (checked at load) or the default."""
    text = template if template is not None else DEFAULT_TEMPLATES[kind_of(alert)]
    return text.format_map(fields_of(alert, threshold))
