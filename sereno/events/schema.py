"""The events agents send: their schema, and the struct decoded into."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
FiniteFloat = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
# an integer that fits in 64 bits, as the state file and every JSON reader downstream need
StoredInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# int stays int so that a value sent as 95 is shown as 95, not 95.0.
Number = StoredInt | FiniteFloat


class Event(msgspec.Struct, frozen=True, gc=False):
    """One measurement pushed by an agent."""

    server: NonEmptyStr
    service: NonEmptyStr
    component: NonEmptyStr
    value: Number
    timestamp: Number
    active: bool


EVENT_FIELDS = frozenset(Event.__struct_fields__)


def event_type(extra_fields: Iterable[str] = ()) -> type[Event]:
    """The struct to decode into: `Event`, plus any extra fields that conditions read.

    Extra fields an agent sends are allowed; the ones a rule refers to are kept on the event
    (as `msgspec.UNSET` when an event lacks them), the others are not needed by anything.
    """
    extras = sorted(set(extra_fields) - EVENT_FIELDS)
    if not extras:
        return Event
    fields = [(name, Any, msgspec.UNSET) for name in extras]
    struct = msgspec.defstruct("EventWithExtras", fields, bases=(Event,), frozen=True)
    assert issubclass(struct, Event)
    return struct
