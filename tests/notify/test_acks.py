"""Acknowledgements in planning: an acknowledged alert is not reminded of until its severity
rises above the one it had when acknowledged; its notices say who has it. Invented times."""

from __future__ import annotations

import msgspec

from sereno.engine.alerts import AlertKey, ServerAlert
from sereno.engine.lifecycle import Episode, State
from sereno.notify.acks import Acks
from sereno.notify.config import NotifyConfig, ReceiverSpec, Timing
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import parse_rules

T0 = 1476057600
RULES = parse_rules(
    """
severities: {WARNING: {}, CRITICAL: {}}
rules:
  - name: disk
    levels:
      - {severity: WARNING, condition: value > 0.8}
      - {severity: CRITICAL, condition: value > 0.95}
""",
    "rules.yaml",
)


def firing(severity: str = "WARNING") -> Episode:
    alert = ServerAlert("disk", severity, T0, "Disk", 0.9, "web1", "web")
    key = AlertKey("disk", "web", "web1")
    return Episode(key, severity, State.FIRING, T0, T0, 0.9, 1, alert, fired=T0, notified_at=T0)


def planner(acks: Acks) -> Planner:
    spec = ReceiverSpec("ops", "webhook", "http://127.0.0.1:9", timing=Timing(repeat_interval=60))
    return Planner(NotifyConfig("test", (spec,)), RULES, acks=acks)


def reminded(plan: Planner, episode: Episode) -> list[str | None]:
    return [n.acked_by for _, n in plan.repeats([episode], T0 + 120, T0 + 60)]


def test_an_acknowledged_alert_is_not_reminded_of_until_its_severity_rises() -> None:
    acks = Acks(clock=lambda: 1e9)
    plan = planner(acks)
    episode = firing()
    assert reminded(plan, episode) == [None]
    acks.ack(episode.id, "WARNING", "ana", "looking")
    assert reminded(plan, episode) == []
    risen = msgspec.structs.replace(episode, severity="CRITICAL")
    assert risen.id == episode.id  # the same alert, whatever its level
    assert reminded(plan, risen) == ["ana"]  # and it says who had it
    acks.undo(episode.id)
    assert reminded(plan, episode) == [None]


def test_notices_of_an_acknowledged_alert_say_who_has_it() -> None:
    acks = Acks(clock=lambda: 1e9)
    episode = firing()
    acks.ack(episode.id, "WARNING", "ana", "")
    notice = planner(acks).notice(episode, "de-escalated", T0 + 60)
    assert (notice.alert_id, notice.acked_by) == (episode.id, "ana")
    assert (notice.annotations["alert_id"], notice.annotations["acked_by"]) == (episode.id, "ana")


def test_acks_are_kept_a_while_for_the_history_then_dropped() -> None:
    now = [1e9]
    acks = Acks(clock=lambda: now[0], retention=100)
    acks.ack("a", "WARNING", "ana", "")
    now[0] += 101
    acks.ack("b", "WARNING", "bob", "")
    assert (acks.get("a"), acks.get("b") is not None) == (None, True)
