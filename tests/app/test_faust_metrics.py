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


def _read(partition: int, offset: int, app: faust.App) -> tuple[TP, Message, faust.Event]:
    message = Message("deskstream.raw", partition, offset, 0.0, 0, [], b"k", b"v", None)
    return message.tp, message, faust.Event(app, b"k", b"v", {}, message)


def _traffic(monitor: PrometheusMonitor, app: faust.App, stream: Any) -> None:
    for partition, offset in [(0, 5), (1, 7), (0, 6), (3, 1)]:
        tp, message, event = _read(partition, offset, app)
        monitor.on_message_in(tp, offset, message)
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


async def test_a_batch_records_what_each_of_its_records_would_but_as_active() -> None:
    app = faust.App("faust-metrics-batch", broker="kafka://127.0.0.1:1", autodiscover=False)
    stream = app.stream(app.topic("deskstream.raw", value_serializer="raw"))
    stream.task_owner = asyncio.current_task()
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    faust_monitor = PrometheusMonitor(metrics=FaustMetrics.create(theirs, "faust"))
    cached = CachedPrometheusMonitor(metrics=FaustMetrics.create(ours, "faust"))
    batches = [[(0, 5), (1, 7), (0, 6)], [(3, 1), (0, 7)]]
    for batch in batches:
        reads = [_read(partition, offset, app) for partition, offset in batch]
        # the first record had been taken by another stream of the same topic before: only
        # the stream sees it, as the per-record step did (app.batch_stream)
        tracked = [message for _, message, _ in reads[1:]]
        for tp, message, event in reads:  # Faust's stream, one record at a time
            if message in tracked:
                faust_monitor.on_message_in(tp, message.offset, message)
            faust_monitor.on_stream_event_in(tp, message.offset, stream, event)
        cached.on_batch_in(stream, [event for _, _, event in reads], tracked)

    active = {"faust_active_messages", "faust_total_active_events"}
    ours_now, theirs_now = _samples(ours), _samples(theirs)
    assert {k: v for k, v in ours_now.items() if k[0] not in active} == {
        k: v for k, v in theirs_now.items() if k[0] not in active
    }
    assert ours_now[("faust_messages_received_total", ())] == 3  # 5 read, 2 taken before
    per_partition = "faust_messages_received_per_topics_partition"
    assert ours_now[(per_partition, (("partition", "0"), ("topic", "deskstream.raw")))] == 7
    assert [ours_now[(name, ())] for name in sorted(active)] == [0, 0]
    assert [theirs_now[(name, ())] for name in sorted(active)] == [3, 5]  # never acked: stuck
    ours_counts, their_counts = _counts(cached), _counts(faust_monitor)
    assert ours_counts[0] == their_counts[0]  # events by stream
    # by task: a task is named by its repr, which names the line the task was at
    assert list(ours_counts[1].values()) == list(their_counts[1].values()) == [5]
    assert ours_counts[2] == their_counts[2] == 5  # events in all
    assert ours_counts[4] == their_counts[4]  # the partitions with an inbound time
    assert cached.tp_read_offsets == faust_monitor.tp_read_offsets
    assert cached.messages_received_by_topic == faust_monitor.messages_received_by_topic


def test_the_end_offset_gauge_follows_the_highwater_told_per_record() -> None:
    # Faust's fetch loop tells the partition's highwater for every record it hands on: the
    # same value many times, a new one once a fetch. The gauge shows the latest, also after
    # a rebalance cleared its series while the highwater stayed where it was.
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    faust_monitor = PrometheusMonitor(metrics=FaustMetrics.create(theirs, "faust"))
    cached = CachedPrometheusMonitor(metrics=FaustMetrics.create(ours, "faust"))
    tp = TP("deskstream.raw", 2)
    series = ("faust_topic_partition_end_offset", (("partition", "2"), ("topic", "deskstream.raw")))
    for told in ([20, 20, 20, 25, 25], [25, 25]):
        for monitor in (faust_monitor, cached):
            for highwater in told:
                monitor.track_tp_end_offset(tp, highwater)
        assert _samples(ours) == _samples(theirs)
        assert _samples(ours)[series] == 25
        assert cached.tp_end_offsets == faust_monitor.tp_end_offsets == {tp: 25}
        for monitor in (faust_monitor, cached):
            monitor._clear_partition_related_metrics()  # a rebalance
        assert series not in _samples(ours)
