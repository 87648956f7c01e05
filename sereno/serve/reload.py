"""Rules reload, for SIGHUP and `POST /-/reload` alike: the rules file and the notification
config read again and put to work together, or refused together while the old ones run on."""

from __future__ import annotations

import threading

from sereno.errors import RefusedFile
from sereno.live.evaluator import Evaluation
from sereno.notify.service import Notifications
from sereno.rules.rulefmt import RuleSet, load_default_rules, load_rules
from sereno.serve.metrics import Metrics
from sereno.stderr import to_stderr
from sereno.text import counted


class RulesReload:
    """Reads the rules file, and the notification config, again and puts them to work, or
    refuses them and keeps the old ones; logs and counts either."""

    def __init__(
        self,
        path: str | None,
        live: Evaluation,
        metrics: Metrics,
        notifications: Notifications,
    ) -> None:
        self._path = path  # None: the packaged rules
        self._live = live
        self._metrics = metrics
        self._notifications = notifications
        self._one_at_a_time = threading.Lock()

    def __call__(self) -> RuleSet:
        with self._one_at_a_time:
            try:
                ruleset = load_default_rules() if self._path is None else load_rules(self._path)
                config = self._notifications.read(ruleset)
            except RefusedFile as error:
                self._metrics.reload_failures.inc()
                to_stderr(
                    f"sereno: reload refused, the old rules and receivers keep running:\n{error}"
                )
                raise
            planner = self._notifications.planner_for(config, ruleset)
            try:
                self._live.reload(ruleset, planner)
            except TimeoutError as error:
                self._metrics.reload_failures.inc()
                to_stderr(f"sereno: rules reload failed, the old rules keep running: {error}")
                raise
            self._notifications.use(config, planner)
            self._metrics.reloads.inc()
            to_stderr(
                f"sereno: rules reloaded from {ruleset.source}: {len(ruleset.rules)} rules; "
                f"notifying {counted(len(config.receivers), 'receiver')}"
            )
            return ruleset
