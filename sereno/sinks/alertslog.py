"""The alerts log of `sereno serve`: every change of an alert's state, a JSON line each."""

from __future__ import annotations

from typing import IO

import msgspec

from sereno.engine.lifecycle import Episode
from sereno.engine.records import EpisodeRecord


class ChangeLog:
    """Every change of an alert as a JSON line (an episode record with its `change` and the
    `notice` it called for), written at once."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._encoder = msgspec.json.Encoder()

    def write(self, episode: Episode) -> None:
        self._stream.write(self._encoder.encode(EpisodeRecord.of(episode, as_change=True)) + b"\n")
        self._stream.flush()
