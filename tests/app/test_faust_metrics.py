"""The cached Faust monitor (``app.faust_metrics``) records exactly what Faust's own
``PrometheusMonitor`` records, and keeps recording into the registry after a rebalance has
removed the partition-labelled children."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from faust.types.tuples import Message
from prometheus_client import CollectorRegistry

from app.faust_metrics import CachedPrometheusMonitor


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        # Times differ from run to run: creation stamps and the runtime histogram's buckets.
        if not sample.name.endswith("_created")
        and not (sample.name.startswith("faust_events_runtime") and "_count" not in sample.name)
    }


def _traffic(monitor: PrometheusMonitor, app: faust.App, stream: Any) -> None:
    for partition, offset in [(0, 5), (1, 7), (0, 6), (3, 1)]:
        tp = TP("deskstream.raw", partition)
        message = Message("deskstream.raw", partition, offset, 0.0, 0, [], b"k", b"v", None)
        monitor.on_message_in(tp, offset, message)
        event = faust.Event(app, b"k", b"v", {}, message)
        state = monitor.on_stream_event_in(tp, offset, stream, event)
        monitor.on_stream_event_out(tp, offset, stream, event, state)
        monitor.track_tp_end_offset(tp, offset + 10)
        assert state is not None
        table = app.tables["links"]
        monitor.on_table_get(table, "k")
        monitor.on_table_set(table, "k", b"v")
        monitor.on_table_del(table, "k")
        monitor.on_send_initiated(cast(Any, None), "deskstream.sync", cast(Any, None), 1, 1)


def _counts(monitor: PrometheusMonitor) -> tuple[Any, ...]:
    """What Faust's own monitor keeps per stream and task (its web views show them)."""
    return (
        dict(monitor.events_by_stream),
        dict(monitor.events_by_task),
        monitor.events_total,
        monitor.events_active,
        sorted(monitor.stream_inbound_time),
    )


async def test_the_stream_and_task_counts_follow_a_new_agent_task() -> None:
    app = faust.App("faust-metrics-owner", broker="kafka://127.0.0.1:1", autodiscover=False)
    stream = app.stream(app.topic("deskstream.raw", value_serializer="raw"))
    app.Table("links", default=None)
    faust_monitor = PrometheusMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))
    cached = CachedPrometheusMonitor(metrics=FaustMetrics.create(CollectorRegistry(), "faust"))

    async def agent_task() -> None:  # an agent restarted: its stream has a new task
        stream.task_owner = asyncio.current_task()
        for monitor in (faust_monitor, cached):
            _traffic(monitor, app, stream)

    await asyncio.create_task(agent_task())
    await asyncio.create_task(agent_task())
    counts = _counts(cached)
    assert counts == _counts(faust_monitor)
    assert sorted(counts[1].values()) == [4, 4]  # four events under each task


async def test_the_same_metrics_as_faust_records_and_after_a_rebalance_too() -> None:
    app = faust.App("faust-metrics-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    stream = app.stream(app.topic("deskstream.raw", value_serializer="raw"))
    app.Table("links", default=None)
    stream.task_owner = asyncio.current_task()  # an agent's task, as when a worker runs
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    faust_monitor = PrometheusMonitor(metrics=FaustMetrics.create(theirs, "faust"))
    cached = CachedPrometheusMonitor(metrics=FaustMetrics.create(ours, "faust"))
    for monitor in (faust_monitor, cached):
        _traffic(monitor, app, stream)
    assert _samples(ours) == _samples(theirs)

    for monitor in (faust_monitor, cached):
        monitor._clear_partition_related_metrics()  # what a rebalance does
        _traffic(monitor, app, stream)
    assert _counts(cached) == _counts(faust_monitor)
    after = _samples(ours)
    assert after == _samples(theirs)
    assert (
        after[
            (
                "faust_messages_received_per_topics_partition",
                (("partition", "3"), ("topic", "deskstream.raw")),
            )
        ]
        == 1
    )
