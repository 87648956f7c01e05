"""The floor: decode a JSON Lines file of events into Sereno's event structs, nothing else.

It reads the file as `sereno` does, a chunk of whole lines at a time, and decodes each line
with msgspec; the events are dropped at once. Prints how many were decoded.
"""

from __future__ import annotations

import sys

import msgspec

from sereno.events.reader import CHUNK_BYTES
from sereno.events.schema import Event


def decode(path: str) -> int:
    decoder = msgspec.json.Decoder(Event)
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read1(CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += stream.readline()
            lines = chunk.split(b"\n")
            if not lines[-1]:
                lines.pop()
            count += len(list(map(decoder.decode, lines)))
    return count


if __name__ == "__main__":
    print(decode(sys.argv[1]))
