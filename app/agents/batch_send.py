"""The records an agent writes for a batch of inputs, sent as one Kafka batch per partition.

Faust's ``Topic.send`` costs tens of microseconds a record (a FutureMessage, its callbacks,
the sensors, and for ``send_soon`` a buffer that holds the fetcher back at 100 records) and
aiokafka's ``send`` still partitions, checks and queues each record on its own. On the
normalize hot path the records caused by a whole input batch are appended to one
``BatchBuilder`` per topic partition and handed to the producer with ``send_batch``: a few
microseconds a record (``docs/performance.md``).

A record without a partition goes where Faust's own producer would put it (murmur2 of the key
over the topic's partitions, as the Java client does: ``app.key_partitioner``), so keyed topics
stay co-partitioned with what the other agents and tables write. The
values are sent as they are: the caller has encoded them and checked that each one fits the
message size (a record larger than the batch size goes alone in its batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TP
from faust.types.stores import StoreT

from app.key_partitioner import KeyPartitioner

__all__ = ["BatchSend", "TableChangelog"]

#: the workers' own (Faust's ``producer_partitioner``): each key's hash remembered, as raw keys
#: repeat (one entity, many events)
_partitioner = KeyPartitioner()

#: told the partition and the offset of the last record of a batch Kafka acknowledged
OnAcknowledged = Callable[[TP, int], None]


class BatchSend:
    """Collects records, then sends all of them at once (``send``)."""

    def __init__(
        self,
        producer: Callable[[], AIOKafkaProducer],
        *,
        on_acknowledged: Mapping[str, OnAcknowledged] | None = None,
    ) -> None:
        self._producer = producer
        self._on_acknowledged = dict(on_acknowledged or {})
        #: topic → partition (None: by key) → (key, value) in the order added
        self._records: dict[str, dict[int | None, list[tuple[bytes, bytes]]]] = {}

    def add(self, topic: str, key: bytes, value: bytes, *, partition: int | None = None) -> None:
        self._records.setdefault(topic, {}).setdefault(partition, []).append((key, value))

    async def send(self) -> list[asyncio.Future[Any]]:
        """Hand every record added since the last call to the producer; the futures are done
        when Kafka acknowledged their batches (with the producer's ``acks``). Records of one
        partition keep the order they were added in."""
        producer = self._producer()
        records, self._records = self._records, {}
        futures: list[asyncio.Future[Any]] = []
        for topic, by_partition in records.items():
            keyed = by_partition.pop(None, None)
            if keyed:
                partition_of = await self._partitioner_for(producer, topic)
                for key, value in keyed:
                    by_partition.setdefault(partition_of(key), []).append((key, value))
            for partition, pairs in by_partition.items():
                futures += await self._send(producer, topic, partition, pairs)
        return futures

    async def _send(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int | None,
        pairs: Sequence[tuple[bytes, bytes]],
    ) -> list[asyncio.Future[Any]]:
        futures: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for key, value in pairs:
            if batch.append(timestamp=None, key=key, value=value) is None:
                # Full: send it and start the next (an empty batch takes any record).
                futures.append(await self._submit(producer, batch, topic, partition))
                batch = producer.create_batch()
                batch.append(timestamp=None, key=key, value=value)
        futures.append(await self._submit(producer, batch, topic, partition))
        return futures

    async def _submit(
        self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int | None
    ) -> asyncio.Future[Any]:
        count = batch.record_count()
        future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
        callback = self._on_acknowledged.get(topic)
        if callback is not None:

            def acknowledged(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and done.exception() is None:
                    metadata = done.result()  # the batch's: its first record's offset
                    callback(TP(topic, metadata.partition), metadata.offset + count - 1)

            future.add_done_callback(acknowledged)
        return future

    async def _partitioner_for(
        self, producer: AIOKafkaProducer, topic: str
    ) -> Callable[[bytes], int]:
        partitions = sorted(await producer.partitions_for(topic))  # waits for metadata once
        return lambda key: _partitioner(key, partitions, partitions)


class TableChangelog:
    """A Faust table's changelog records written in batches, as ``Table.send_changelog``
    writes them one by one: once a partition's batch is acknowledged, the offset of its last
    record is the store's persisted offset (a RocksDB store recovers from there)."""

    def __init__(self, table: faust.types.TableT[Any, Any], producer: Callable[[], Any]) -> None:
        self._table = table
        self._topic = table.changelog_topic.get_topic_name()
        self._out = BatchSend(producer, on_acknowledged={self._topic: self._persisted})

    async def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> list[asyncio.Future[Any]]:
        """Send ``(partition, key, value)`` records; done when Kafka acknowledged them."""
        for partition, key, value in records:
            self._out.add(self._topic, key, value, partition=partition)
        return await self._out.send()

    def _persisted(self, tp: TP, offset: int) -> None:
        # A table's data is its store (StoreT), typed as a plain mapping by Faust.
        cast(StoreT[Any, Any], self._table.data).set_persisted_offset(tp, offset)
