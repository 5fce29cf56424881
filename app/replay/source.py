"""Reading a topic's records over a time range, outside any consumer group.

The consumer has no group id: partitions are assigned by hand and positions are sought, so
nothing is ever committed and the live group's offsets are never touched (nor is a group
created). The range is fixed once: ``offsets_for_times`` finds each partition's first
offset at or after ``--from`` and at or after ``--to``; without ``--to`` the end is the
partition's end offset at that moment, so a replay terminates whatever is written meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from app.topic_admin import partition_count
from schemas.errors import ConfigurationError
from streams.replay import Span

__all__ = ["new_consumer", "partitions_of", "plan_spans", "read_spans"]

log = logging.getLogger(__name__)

#: records per fetch call: large, so the per-call cost of aiokafka stays small
_MAX_RECORDS = 5000


def new_consumer(bootstrap: str, *, max_message_bytes: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,  # no group: no commits, no rebalance, the live group untouched
        enable_auto_commit=False,
        # A span's next offset that retention removed reads on from the log start.
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=max(1024 * 1024, max_message_bytes),
        fetch_max_bytes=max(50 * 1024 * 1024, max_message_bytes),
    )


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions; a missing topic is refused (asking offsets of a partition that
    does not exist would wait forever)."""
    count = await partition_count(bootstrap, topic)
    if not count:
        raise ConfigurationError(
            f"topic {topic!r} does not exist on this cluster; check --topic (full name, e.g. "
            "deskstream.events) and KAFKA_BOOTSTRAP_SERVERS"
        )
    return [TopicPartition(topic, p) for p in range(count)]


async def plan_spans(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    start_ms: int | None,
    end_ms: int | None,
) -> dict[int, Span]:
    """Each partition's ``[start, end)`` for records stamped in ``[start_ms, end_ms)``."""
    beginnings = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    starts = dict(beginnings)
    if start_ms is not None:
        found = await consumer.offsets_for_times({tp: start_ms for tp in partitions})
        starts = {tp: ends[tp] if hit is None else hit.offset for tp, hit in found.items()}
    stops = dict(ends)
    if end_ms is not None:
        found = await consumer.offsets_for_times({tp: end_ms for tp in partitions})
        stops = {tp: ends[tp] if hit is None else hit.offset for tp, hit in found.items()}
    spans = {}
    for tp in partitions:
        start = max(starts[tp], beginnings[tp])
        end = max(start, min(stops[tp], ends[tp]))
        spans[tp.partition] = Span(start=start, end=end, next=start)
    return spans


async def read_spans(
    consumer: AIOKafkaConsumer, topic: str, spans: Mapping[int, Span]
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """Batches of records from each span's ``next`` to its ``end``, in offset order per
    partition; ends when every partition reached its end."""
    open_tps = {TopicPartition(topic, p): s.end for p, s in spans.items() if s.remaining}
    if not open_tps:
        return
    consumer.assign(list(open_tps))
    for tp in open_tps:
        consumer.seek(tp, spans[tp.partition].next)
    while open_tps:
        fetched = await consumer.getmany(*open_tps, timeout_ms=1000, max_records=_MAX_RECORDS)
        batch = []
        for tp, records in fetched.items():
            end = open_tps.get(tp)
            if end is None:
                continue
            batch += [r for r in records if r.offset < end]
        for tp in list(open_tps):
            if await consumer.position(tp) >= open_tps[tp]:
                consumer.pause(tp)
                del open_tps[tp]
        if batch:
            yield batch
