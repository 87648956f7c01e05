"""The silences API: `POST /api/silences` makes one, `GET /api/silences` lists them by state,
`GET /api/silences/{id}` shows one and `DELETE /api/silences/{id}` expires it.

A request is checked as every input is: a body that is not one, a matcher that is not one, an
end before the start, each is a `400` with the reason, and an unknown id a `404`.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from fastapi import Request, Response

from sereno.events.body import BodyError
from sereno.notify.matchers import MatcherError, parse_matcher
from sereno.notify.silences import Silence, SilenceError, UnknownSilence, parse_silence_duration
from sereno.notify.silencing import Silences
from sereno.serve.answers import (
    Problem,
    SilenceAnswer,
    SilenceListAnswer,
    SilenceRequest,
    json_answer,
)
from sereno.serve.params import read_body

MAX_SILENCE_BODY = 64 * 1024


class SilenceApi:
    """The handlers of the silences routes, over the service's silences."""

    def __init__(self, silences: Silences) -> None:
        self._silences = silences
        self._decoder = msgspec.json.Decoder(SilenceRequest)

    async def create(self, request: Request) -> Response:
        try:
            asked = self._decoder.decode(await read_body(request, MAX_SILENCE_BODY))
            silence = self._add(asked)
        except BodyError as error:
            return json_answer(error.status, Problem(str(error)))
        except msgspec.DecodeError as error:
            return json_answer(400, Problem(f"not a silence: {error}"))
        except (MatcherError, SilenceError) as error:
            return json_answer(400, Problem(str(error)))
        return json_answer(201, self._shown(silence))

    def _add(self, asked: SilenceRequest) -> Silence:
        if not asked.matchers:
            raise SilenceError("a silence needs at least one matcher")
        matchers = [parse_matcher(text) for text in asked.matchers]
        if (asked.ends_at is None) == (asked.duration is None):
            raise SilenceError("give either ends_at or duration (such as 1h or 30m)")
        until: float | timedelta
        if asked.duration is not None:
            until = timedelta(seconds=parse_silence_duration(asked.duration))
        else:
            assert asked.ends_at is not None
            until = asked.ends_at
        return self._silences.add(matchers, until, asked.created_by, asked.comment, asked.starts_at)

    def listing(self) -> Response:
        return json_answer(200, self.answer())

    def answer(self) -> SilenceListAnswer:
        """The silences by state, as `GET /api/silences` answers them."""
        listed = self._silences.listing()
        return SilenceListAnswer(
            active=[self._shown(s) for s in listed.active],
            pending=[self._shown(s) for s in listed.pending],
            expired=[self._shown(s) for s in listed.expired],
        )

    def show(self, silence_id: str) -> Response:
        try:
            return json_answer(200, self._shown(self._silences.get(silence_id)))
        except UnknownSilence as error:
            return json_answer(404, Problem(str(error)))

    def expire(self, silence_id: str) -> Response:
        try:
            return json_answer(200, self._shown(self._silences.expire(silence_id)))
        except UnknownSilence as error:
            return json_answer(404, Problem(str(error)))
        except SilenceError as error:
            return json_answer(409, Problem(str(error)))

    def _shown(self, silence: Silence) -> SilenceAnswer:
        return SilenceAnswer.of(silence, self._silences.state(silence))
