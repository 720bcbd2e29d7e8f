"""Prometheus gauges of the queues, read when /metrics is scraped: how many
tasks wait and how old the oldest due one is, per queue (the figures an
on-call person alerts on). One query, on the trigger-kept counts and the
``task_active_due`` index (see ``queues_overview``)."""

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reviews.selectors import queues_overview


class QueueCollector(Collector):
    def collect(self):
        open_tasks = GaugeMetricFamily(
            "workbench_queue_open_tasks",
            "Open review tasks waiting in the queue",
            labels=["system", "queue"],
        )
        claimed = GaugeMetricFamily(
            "workbench_queue_claimed_tasks", "Tasks held under a lease", labels=["system", "queue"]
        )
        oldest = GaugeMetricFamily(
            "workbench_queue_oldest_due_timestamp_seconds",
            "Due time of the queue's oldest open or claimed task (Unix time)",
            labels=["system", "queue"],
        )
        overdue = GaugeMetricFamily(
            "workbench_queue_oldest_overdue_seconds",
            "How long the oldest open or claimed task is past its due time (0 if none)",
            labels=["system", "queue"],
        )
        now = timezone.now()
        for queue in queues_overview(roles=None, now=now):
            labels = [queue.system.slug, queue.slug]  # a slug is unique within its system
            open_tasks.add_metric(labels, queue.open_count)
            claimed.add_metric(labels, queue.claimed_count)
            if queue.oldest_due is not None:
                oldest.add_metric(labels, queue.oldest_due.timestamp())
                overdue.add_metric(labels, max(0.0, (now - queue.oldest_due).total_seconds()))
            else:
                overdue.add_metric(labels, 0.0)
        yield from (open_tasks, claimed, oldest, overdue)

    def describe(self):
        return []  # collected only when scraped (no database work at registration)


_collector: QueueCollector | None = None


def queue_collector_register() -> None:
    """Register the collector with the default registry, once per process."""
    global _collector
    if _collector is None:
        from prometheus_client import REGISTRY

        _collector = QueueCollector()
        REGISTRY.register(_collector)
