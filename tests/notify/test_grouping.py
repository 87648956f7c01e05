"""Grouping per receiver, with invented times: group_wait gathers a new group's alerts,
group_interval spaces out its changes, repeat_interval tells it again while nothing changes,
and a receiver without group_by is told of each change as before."""

from __future__ import annotations

from sereno.engine.lifecycle import Episode
from sereno.notify.config import NotifyConfig, parse_config
from sereno.notify.grouping import Groups
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.webhook import webhook_payload
from sereno.rules.rulefmt import load_default_rules

from disk_alerts import DISK, T0, M, change

RULES = load_default_rules()
CONFIG = """
receivers:
  - {name: grouped, type: webhook, url: "http://127.0.0.1:9/a", group_by: [service, rule],
     group_wait: 30s, group_interval: 5m, repeat_interval: 1h}
  - {name: one-by-one, type: webhook, url: "http://127.0.0.1:9/b"}
  - {name: alone, type: webhook, url: "http://127.0.0.1:9/c", group_by: [...]}
"""


def config() -> NotifyConfig:
    return parse_config(CONFIG, "sereno.yaml", RULES)


def planned(plan: Planner, episodes: list[Episode]) -> dict[str, int]:
    """How many notices each receiver is handed at once."""
    counts: dict[str, int] = {}
    for receiver, _ in plan.for_changes(episodes):
        counts[receiver] = counts.get(receiver, 0) + 1
    return counts


def messages(plan: Planner, minute: int) -> list[tuple[str, Notice]]:
    return plan.due_groups(T0 + minute * M)


def test_an_outage_of_forty_servers_is_one_message_after_group_wait() -> None:
    plan = Planner(config(), RULES)
    outage = [change(f"web{n:02}", 0) for n in range(40)]
    # told one by one to the receiver that does not group; the others wait
    assert planned(plan, outage) == {"one-by-one": 40}
    assert messages(plan, 0) == []  # group_wait (30 s) has not passed at the minute's start
    due = messages(plan, 1)
    [(receiver, grouped)] = [(r, n) for r, n in due if r == "grouped"]
    assert len(grouped.alerts) == 40 and grouped.status == "firing"
    assert grouped.title == f"[FIRING:40] alertname={DISK} service=web"
    assert grouped.summary == f"40 firing: alertname={DISK}, service=web"
    assert sorted(r for r, _ in due).count("alone") == 40  # [...]: each alert its own group
    payload = webhook_payload(receiver, grouped)
    assert len(payload["alerts"]) == 40  # type: ignore[arg-type]
    assert payload["groupLabels"] == {"alertname": DISK, "service": "web"}


def test_changes_of_a_told_group_wait_for_group_interval_and_list_the_whole_group() -> None:
    plan = Planner(config(), RULES)
    plan.for_changes([change("web01", 0), change("web02", 0)])
    assert [r for r, _ in messages(plan, 1)].count("grouped") == 1
    plan.for_changes([change("web02", 2, resolved=True), change("web03", 2)])
    assert [r for r, _ in messages(plan, 2) if r == "grouped"] == []
    assert [r for r, _ in messages(plan, 5) if r == "grouped"] == []  # 4 minutes after
    [update] = [n for r, n in messages(plan, 6) if r == "grouped"]  # 5 minutes after
    states = sorted((alert.server, alert.status) for alert in update.alerts)
    assert states == [("web01", "firing"), ("web02", "resolved"), ("web03", "firing")]
    assert update.summary.startswith("2 firing, 1 resolved")
    # the resolved one is told once; while nothing changes the group is told again hourly
    assert [r for r, _ in messages(plan, 30) if r == "grouped"] == []
    [again] = [n for r, n in messages(plan, 66) if r == "grouped"]
    assert sorted(alert.server for alert in again.alerts) == ["web01", "web03"]


def test_a_group_whose_alerts_have_all_resolved_is_told_so_and_forgotten() -> None:
    groups = Groups()
    plan = Planner(config(), RULES, groups=groups)
    plan.for_changes([change("web01", 0)])
    messages(plan, 1)
    plan.for_changes([change("web01", 3, resolved=True)])
    [last] = [n for r, n in messages(plan, 6) if r == "grouped"]
    assert (last.status, last.title) == ("resolved", f"[RESOLVED:1] alertname={DISK} service=web")
    assert [g.receiver for g in groups.groups] == []


def test_groups_are_saved_and_taken_up_again() -> None:
    plan = Planner(config(), RULES)
    plan.for_changes([change("web01", 0)])
    again = Planner(config(), RULES)
    again.groups.restore(plan.groups.saved())
    [grouped] = [n for r, n in messages(again, 1) if r == "grouped"]
    assert [alert.server for alert in grouped.alerts] == ["web01"]
