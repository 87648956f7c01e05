"""The receivers over HTTP: `GET /api/receivers` says what each one's delivery has done,
`POST /api/receivers/{name}/test` sends one a test notification now, as `sereno notify-test`
does, and says whether it took it."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from sereno.notify.notice import drill_notice
from sereno.notify.service import Notifications, fire_drill
from sereno.rules.rulefmt import RuleSet
from sereno.serve.answers import DrillAnswer, Problem, json_answer
from sereno.serve.readings import receiver_answers


class ReceiverApi:
    """The handlers of the receivers' routes."""

    def __init__(self, notifications: Notifications, ruleset: Callable[[], RuleSet]) -> None:
        self._notifications, self._ruleset = notifications, ruleset

    def listing(self) -> Response:
        return json_answer(200, receiver_answers(self._notifications))

    async def test(self, name: str) -> Response:
        config = self._notifications.config  # as it is now: a reload may change it
        spec = config.receiver(name)
        if spec is None:
            return json_answer(404, Problem(f"no receiver is named {name!r}"))
        notice = drill_notice(config, self._ruleset(), time.time(), "Sereno's page")
        [(_, error)] = await run_in_threadpool(lambda: list(fire_drill([spec], notice)))
        answer = DrillAnswer(name, error is None, None if error is None else str(error))
        return json_answer(200, answer)
