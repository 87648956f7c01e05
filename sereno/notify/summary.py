"""An alert told in one line: its rule's `summary:` template (checked when the rules were
loaded), or the default for its kind, filled in with the alert's fields."""

from __future__ import annotations

from sereno.engine.alerts import AbsentAlert, Alert, MajorityAlert, ServerAlert
from sereno.rules.summary import DEFAULT_TEMPLATES


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
