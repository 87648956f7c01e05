"""A bound for pure Python: the two packaged rules written out by hand for generated files.

It reads and windows the file with Sereno's own reader and windows, then evaluates each
minute with code that knows the two rules and what `generate.py` makes, and skips what that
knowledge makes needless: it does not parse the rules, check a condition's types, find the
latest of several samples of a server and component (a generated file sends one a minute),
work out a server's activity from its latest sample (a generated server is active or passive
all minute), track alerts from minute to minute or count them per rule. What is left is the
least a minute costs in Python: a pass for each rule's component, one for the servers'
activity, each rule's condition, the alerts made, ordered and written. On a generated file
it prints what `sereno FILE --format json` prints, byte for byte: the time it takes is a bound
below Sereno's own for the same output, for any rule engine written in Python.

    python benchmarks/bound.py FILE | md5sum
    sereno FILE --format json --quiet | md5sum
"""

from __future__ import annotations

import sys
from collections import Counter
from itertools import groupby
from operator import attrgetter, itemgetter

import msgspec

from sereno.engine.alerts import Alert, MajorityAlert, ServerAlert
from sereno.engine.windows import Window, Windows
from sereno.events.reader import EventReader
from sereno.events.schema import Event

DISK, LOAD = "DiskUsedPercentage", "Load5mAvg"
DISK_RULE, LOAD_RULE = "Disk consumption exceeds 90%", "5 min load average exceeds 4.0"

_service = attrgetter("service")
_value = attrgetter("value")
_first = itemgetter(0)


def _disk_alerts(events: list[Event]) -> list[ServerAlert]:
    return [
        ServerAlert(DISK_RULE, "MEDIUM", e.timestamp, e.component, e.value, e.server, e.service)
        for e in events
        if e.component == DISK and e.value > 0.9 and e.active
    ]


def _load_alerts(start: int, events: list[Event]) -> list[MajorityAlert]:
    active = Counter(map(_first, {(e.service, e.server) for e in events if e.active}))
    matching = [e for e in events if e.component == LOAD and e.value > 4.0 and e.active]
    alerts = []
    for service, group in groupby(sorted(matching, key=_service), _service):
        servers = {e.server: e for e in group}
        if 2 * len(servers) > active[service]:
            names = sorted(servers)
            highest = max(map(servers.__getitem__, names), key=_value)
            alerts.append(
                MajorityAlert(
                    LOAD_RULE,
                    "HIGH",
                    start,
                    LOAD,
                    highest.value,
                    service,
                    "4.0",
                    names,
                    len(names),
                    active[service],
                )
            )
    return alerts


def _in_order(window: Window) -> list[Alert]:
    disk = _disk_alerts(window.events)
    load = _load_alerts(window.start, window.events)
    keys = [(a.timestamp, 0, a.service, a.server) for a in disk]
    keys += [(a.timestamp, 1, a.service, "") for a in load]
    alerts: list[Alert] = [*disk, *load]
    order = sorted(range(len(alerts)), key=keys.__getitem__)
    return list(map(alerts.__getitem__, order))


def main(path: str) -> None:
    encoder = msgspec.json.Encoder()
    stdout = sys.stdout.buffer
    windows = Windows()
    with open(path, "rb") as stream:
        reader = EventReader(stream, path, on_error=lambda error: None)
        for batch in reader.batches():
            for window in windows.extend(batch.events, lambda index: None, batch.timestamps):
                stdout.write(encoder.encode_lines(_in_order(window)))
    for window in windows.close_all():
        stdout.write(encoder.encode_lines(_in_order(window)))


if __name__ == "__main__":
    main(sys.argv[1])
