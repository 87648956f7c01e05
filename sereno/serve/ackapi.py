"""Acknowledgements over HTTP: `POST /api/alerts/{id}/ack` says who has an open alert,
`DELETE /api/alerts/{id}/ack` takes it back. The id is the alert's short id, as `GET /alerts`,
the status page and notifications show it."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from fastapi import Request, Response

from sereno.engine.lifecycle import Episode
from sereno.events.body import BodyError
from sereno.notify.acks import AckError, Acks
from sereno.serve.answers import AckAnswer, AckRequest, Problem, json_answer
from sereno.serve.params import read_body

MAX_ACK_BODY = 16 * 1024


class AckApi:
    """The handlers of the acknowledgement routes, over the open alerts and the acks."""

    def __init__(self, acks: Acks, open_alerts: Callable[[], list[Episode]]) -> None:
        self._acks, self._open_alerts = acks, open_alerts
        self._decoder = msgspec.json.Decoder(AckRequest)

    async def ack(self, alert_id: str, request: Request) -> Response:
        episode = self._open(alert_id)
        if episode is None:
            return json_answer(404, Problem(f"no open alert has the id {alert_id!r}"))
        try:
            asked = self._decoder.decode(await read_body(request, MAX_ACK_BODY))
            ack = self._acks.ack(alert_id, episode.severity, asked.by, asked.comment)
        except BodyError as error:
            return json_answer(error.status, Problem(str(error)))
        except msgspec.DecodeError as error:
            return json_answer(400, Problem(f"not an acknowledgement: {error}"))
        except AckError as error:
            return json_answer(400, Problem(str(error)))
        return json_answer(200, AckAnswer.of(alert_id, ack))

    def undo(self, alert_id: str) -> Response:
        try:
            return json_answer(200, AckAnswer.of(alert_id, self._acks.undo(alert_id)))
        except AckError as error:
            return json_answer(404, Problem(str(error)))

    def _open(self, alert_id: str) -> Episode | None:
        return next((e for e in self._open_alerts() if e.id == alert_id), None)
