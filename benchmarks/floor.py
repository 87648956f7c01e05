"""The floor: decode a JSON Lines file of events into Sereno's event structs, nothing else.

It reads the file in chunks of about 4 MB of whole lines and decodes each chunk at once with
msgspec's `Decoder.decode_lines`, the fastest reading of JSON Lines msgspec offers; the events
are dropped at once. Prints how many were decoded.
"""

from __future__ import annotations

import sys

import msgspec

from sereno.events.schema import Event

CHUNK_BYTES = 4 << 20


def decode(path: str) -> int:
    decoder = msgspec.json.Decoder(Event)
    count = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += stream.readline()
            count += len(decoder.decode_lines(chunk))
    return count


if __name__ == "__main__":
    print(decode(sys.argv[1]))
