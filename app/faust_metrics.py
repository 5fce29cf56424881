"""Faust's own Prometheus metrics (``faust_*``), each labelled child looked up once.

Faust's ``PrometheusMonitor`` calls ``metric.labels(topic=..., partition=...)`` for several
metrics on every record read, every table read or write and every send, and normalises the
stream's name with a regular expression on every event: together a few percent of a busy
worker's CPU (``docs/performance.md``). This monitor records the very same metrics, keeping
the children it has looked up; they are forgotten whenever Faust removes the
partition-labelled ones (a rebalance), so a value is never set on a child the registry no
longer holds.

It also hears of a batch taken by ``app.batch_stream`` in one call (``on_batch_in``): the
same counts and read offsets, each metric touched once per topic, partition or stream rather
than once per record. Those records are not counted as active (``faust_active_messages``,
``faust_total_active_events``): the agents ack them through ``app.agents.acks``, which does
not report back to the sensors, so each would stay active for ever and the gauges only grow.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable, Sequence
from time import monotonic
from typing import Any, cast

import faust
from aiohttp.web import Response
from faust import web
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP, CollectionT, EventT, Message, ProducerT, StreamT
from faust.types.tuples import PendingMessage
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CachedPrometheusMonitor", "setup_faust_metrics"]

#: the attribute a stream carries its (task, stream name, task name) on, for this monitor
_NAMES = "_deskstream_monitor_names"


class CachedPrometheusMonitor(PrometheusMonitor):
    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics=metrics, **kwargs)
        # Not `_children`: mode services keep their child services under that name.
        self._labelled: dict[Hashable, Any] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), labels)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(*labels)
        return child

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._child(metrics.messages_received_per_topics, tp.topic).inc()
        self._child(metrics.messages_received_per_topics_partition, tp.topic, tp.partition).set(
            offset
        )

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[Any, Any] | None:
        # Monitor.on_stream_event_in, with the stream's and its task's names kept on the
        # stream: Faust finds them in two WeakKeyDictionary lookups per event, each making a
        # weak reference, ≈ 4 % of a normalizing worker's CPU (py-spy, docs/performance.md).
        self.events_total += 1
        self.stream_inbound_time[tp] = monotonic()
        _, stream_name, task_name = self._names(stream)
        self.events_by_stream[stream_name] += 1
        self.events_by_task[task_name] += 1
        self.events_active += 1
        state = {"time_in": self.time(), "time_out": None, "time_total": None}
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        self._stream_events(stream).inc()
        return state

    def on_batch_in(
        self, stream: StreamT[Any], events: Sequence[EventT[Any]], tracked: Sequence[Message]
    ) -> None:
        """``on_message_in`` for each of ``tracked`` and ``on_stream_event_in`` for each of
        ``events``, but for the active counts (see the module's docstring)."""
        metrics = self._metrics
        if tracked:
            by_topic: Counter[str] = Counter()
            last_read: dict[TP, int] = {}
            for message in tracked:  # in reading order: the last offset is a partition's
                by_topic[message.topic] += 1
                last_read[message.tp] = message.offset
            self.messages_received_total += len(tracked)
            metrics.messages_received.inc(len(tracked))
            for topic, count in by_topic.items():
                self.messages_received_by_topic[topic] += count
                self._child(metrics.messages_received_per_topics, topic).inc(count)
            per_partition = metrics.messages_received_per_topics_partition
            for tp, offset in last_read.items():
                self.tp_read_offsets[tp] = offset
                self._child(per_partition, tp.topic, tp.partition).set(offset)
        if events:
            now = monotonic()
            for tp in {event.message.tp for event in events}:
                self.stream_inbound_time[tp] = now
            _, stream_name, task_name = self._names(stream)
            self.events_total += len(events)
            self.events_by_stream[stream_name] += len(events)
            self.events_by_task[task_name] += len(events)
            metrics.total_events.inc(len(events))
            self._stream_events(stream).inc(len(events))

    def _names(self, stream: StreamT[Any]) -> tuple[Any, str, str]:
        """(task, stream name, task name), kept on the stream while its task is the same."""
        owner = stream.task_owner
        names: tuple[Any, str, str] | None = getattr(stream, _NAMES, None)
        if names is None or names[0] is not owner:
            names = (owner, self._lookup(self.stream_lookup, stream), self._task_name(owner))
            setattr(stream, _NAMES, names)
        return names

    def _stream_events(self, stream: StreamT[Any]) -> Any:
        key = ("stream", id(stream))
        child = self._labelled.get(key)
        if child is None:
            label = f"stream.{self._stream_label(stream)}.events"
            metric = self._metrics.total_events_per_stream
            child = self._labelled[key] = metric.labels(stream=label)
        return child

    @staticmethod
    def _lookup(names: Any, key: Any) -> str:
        """Faust's name for ``key`` (``str`` of it), remembered where Faust remembers it."""
        name = names.get(key)
        if name is None:
            name = names[key] = str(key)
        return cast(str, name)

    def _task_name(self, owner: asyncio.Task[Any] | None) -> str:
        # A WeakKeyDictionary cannot hold None (a stream no agent task iterates yet).
        return str(owner) if owner is None else self._lookup(self.task_lookup, owner)

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        # Faust's fetch loop tells this for every record it hands on, with the partition's
        # highwater, which moves once a fetch at most: the gauge is set only when it moved.
        # Whatever clears the gauge's series clears ``tp_end_offsets`` too (a rebalance).
        if self.tp_end_offsets.get(tp) == offset:
            return
        Monitor.track_tp_end_offset(self, tp, offset)
        self._child(self._metrics.topic_partition_end_offset, tp.topic, tp.partition).set(offset)

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_operation(table, self.KEYS_RETRIEVED)

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_operation(table, self.KEYS_UPDATED)

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table_operation(table, self.KEYS_DELETED)

    def _table_operation(self, table: CollectionT, operation: str) -> None:
        self._child(self._metrics.table_operations, f"table.{table.name}", operation).inc()

    def on_send_initiated(
        self,
        producer: ProducerT,
        topic: str,
        message: PendingMessage,
        keysize: int,
        valsize: int,
    ) -> Any:
        self._child(self._metrics.topic_messages_sent, f"topic.{topic}").inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    def _clear_partition_related_metrics(self) -> None:
        super()._clear_partition_related_metrics()
        self._labelled.clear()


def setup_faust_metrics(app: faust.App, registry: CollectorRegistry, pattern: str) -> None:
    """What ``faust.sensors.prometheus.setup_prometheus_sensors`` does (metrics named
    ``faust_*`` on ``registry``, served at ``pattern``), with the cached monitor."""
    app.monitor = CachedPrometheusMonitor(metrics=FaustMetrics.create(registry, "faust"))

    @app.page(pattern)
    async def metrics_handler(self: web.View, request: web.Request) -> web.Response:
        headers = {"Content-Type": CONTENT_TYPE_LATEST}
        response = Response(body=generate_latest(registry), headers=headers, status=200)
        return cast(web.Response, response)
