"""A share of the fleet: the services one of several jobs evaluates.

Every rule finds an alert from one service's events alone (a server's samples, a service's
majority, a server's silence), and the lifecycle follows each alert on its own; so jobs that
each take the whole stream through the same windows, and evaluate only their own services,
find between them exactly the alerts one would. The exception is inhibition between services
(`equal` without `service`), which `shares_by_service` tells.
"""

from __future__ import annotations

import zlib
from operator import attrgetter

from sereno.engine.windows import Window
from sereno.rules.rulefmt import RuleSet

_service = attrgetter("service")


def shares_by_service(ruleset: RuleSet) -> bool:
    """Whether the rules can be evaluated a share of the services at a time."""
    return all(not spec.inhibited_by or "service" in spec.equal for spec in ruleset.rules)


class Shard:
    """Job `index` of `count`: the services whose CRC-32 leaves `index` divided by `count`
    (the same in every process, unlike `hash`)."""

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"no job {index} of {count}")
        self.index, self.count = index, count
        self._owned: dict[str, bool] = {}

    def owns(self, service: str) -> bool:
        owned = self._owned.get(service)
        if owned is None:
            owned = zlib.crc32(service.encode("utf-8", "surrogatepass")) % self.count == self.index
            self._owned[service] = owned
        return owned

    def part(self, window: Window) -> Window:
        """The window's events of the shard's services, in the order they came."""
        services = set(map(_service, window.events))
        mine = {service for service in services if self.owns(service)}
        part = Window(window.start)
        if len(mine) == len(services):
            part.events = window.events
        elif mine:
            part.events = [event for event in window.events if event.service in mine]
        return part
