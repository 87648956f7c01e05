"""`GET /metrics`: the service's Prometheus metrics, counted as requests come and, for the
live engine and the notifications, read from them at each scrape."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sereno.live.evaluator import Evaluation
from sereno.notify.delivery import Delivery


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        # a `_created` series beside every counter is only noise (the function is untyped)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "sereno_events_accepted", "Events accepted by POST /events", registry=self.registry
        )
        self.rejected = Counter(
            "sereno_events_rejected",
            "Records and whole bodies refused by POST /events, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.evaluation = Histogram(
            "sereno_window_evaluation_seconds",
            "Time to evaluate a minute, from the batch of events that closed it",
            registry=self.registry,
        )
        self.reloads = Counter(
            "sereno_rules_reloads", "Rules files reloaded and put to work", registry=self.registry
        )
        self.reload_failures = Counter(
            "sereno_rules_reload_failures",
            "Rules files refused on reload (the old rules kept running)",
            registry=self.registry,
        )

    def watch(self, live: Evaluation) -> None:
        self.registry.register(_LiveCollector(live))

    def watch_delivery(self, delivery: Delivery) -> None:
        self.registry.register(_DeliveryCollector(delivery))


class _LiveCollector(Collector):
    """The live engine's own counts, read at each scrape."""

    def __init__(self, live: Evaluation) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        stats = self._live.stats
        counts = (
            ("sereno_events_evaluated", "Events evaluated", stats.events_evaluated),
            ("sereno_late_events", "Events that came after their minute", stats.late_events),
            (
                "sereno_events_ahead_of_fleet",
                "Events rejected as far ahead of the rest of the fleet",
                stats.ahead_events,
            ),
            (
                "sereno_evaluation_errors",
                "Batches and minutes that could not be evaluated and were set aside",
                stats.evaluation_errors,
            ),
            ("sereno_windows_evaluated", "Minutes evaluated", stats.windows_evaluated),
            (
                "sereno_condition_errors",
                "Conditions that failed on an event",
                stats.condition_errors,
            ),
        )
        for name, text, value in counts:
            yield CounterMetricFamily(name, text, value=value)
        alerts = GaugeMetricFamily(
            "sereno_alerts", "Open alerts by rule and state", labels=["rule", "state"]
        )
        open_alerts = Tally((e.key.rule, e.state.value) for e in self._live.alerts())
        for (rule, state), count in sorted(open_alerts.items()):
            alerts.add_metric([rule, state], count)
        yield alerts


class _DeliveryCollector(Collector):
    """The notifications' counts by receiver, and what waits in the outbox, at each scrape."""

    COUNTS = (
        ("sent", "Notifications a receiver acknowledged"),
        ("failed", "Attempts to notify that failed"),
        ("retried", "Attempts to notify made again after a failure"),
    )
    DROPPED = (("expired", "expired"), ("rejected", "rejected"))  # reason label, count

    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery

    def collect(self) -> Iterator[Metric]:
        counts = self._delivery.counts
        for field, text in self.COUNTS:
            family = CounterMetricFamily(f"sereno_notifications_{field}", text, labels=["receiver"])
            for receiver, count in counts.items():
                family.add_metric([receiver], getattr(count, field))
            yield family
        dropped = CounterMetricFamily(
            "sereno_notifications_dropped",
            "Notifications dropped undelivered: expired (older than give_up_after) or "
            "rejected (refused for good by the receiver)",
            labels=["receiver", "reason"],
        )
        for receiver, count in counts.items():
            for reason, field in self.DROPPED:
                dropped.add_metric([receiver, reason], getattr(count, field))
        yield dropped
        queued = GaugeMetricFamily(
            "sereno_notifications_queued",
            "Notifications waiting in the outbox for their receiver",
            labels=["receiver"],
        )
        for receiver, depth in self._delivery.depths().items():
            queued.add_metric([receiver], depth)
        yield queued
