"""Where each pull-based source stands, kept in Kafka: the compacted ``<prefix>.sources`` topic.

A source's positions are records keyed by its name in the partition of its slot
(``slot_of``), the same partition whose assignment in the consumer group is the source's
lease (``app.agents.sources``). Only the lease holder writes there, so the newest record for
the name is the position to resume from. Compaction keeps the newest per name; reading the
partition from its start to its end on every lease is therefore short.

A stored record: ``{"source", "position", "position_time", "stored_at"}`` as JSON.

Reading the partition: the offsets to read are fixed first (``beginning_offsets`` and
``end_offsets``, the high watermark: every acknowledged write, since the store waits for
``acks=all``), then the consumer is put at the beginning with ``seek``. Not
``seek_to_beginning``: in aiokafka (0.14) ``assign`` starts a reset to the consumer's
``auto_offset_reset`` in the background, and a ``seek_to_beginning`` made while that request is
on its way is satisfied by its answer, the *end* (the fetcher applies any reset answer to a
partition still awaiting one, whatever strategy was asked for; Kafka's Java client fixed the
same race in KAFKA-7703, apache/kafka#6407). The load then read nothing and a takeover
restarted from the first-run lookback. ``seek`` to an offset cancels the pending reset, and
``auto_offset_reset="earliest"`` sends an out-of-range position (compaction removed the head
meanwhile) back to the start rather than past every position.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.base.source import Position, SourceBatch

__all__ = ["PositionStore", "Send", "slot_of"]

#: produces (topic, key, value, partition) and returns once Kafka acknowledged it
Send = Callable[[str, bytes, bytes, int], Awaitable[None]]


def slot_of(name: str, slots: int) -> int:
    """The partition of ``<prefix>.sources`` that leases ``name``: a stable hash, so adding a
    source never moves the others (two sources may share a slot and its owner)."""
    return zlib.crc32(name.encode()) % slots


class PositionStore:
    def __init__(
        self, bootstrap_servers: str, topic: str, send: Send, *, timeout_s: float = 60.0
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._send = send
        self._timeout_s = timeout_s

    async def load(self, name: str, partition: int) -> Position | None:
        """The newest stored position of ``name`` (None: never stored, a first run).

        Reads every record of the partition below its end offset as this call starts, or
        raises (the runner retries): a partial read would restart the source too early.
        """
        tp = TopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.seek(tp, begin)
            found: Position | None = None
            try:
                async with asyncio.timeout(self._timeout_s):
                    while await consumer.position(tp) < end:
                        batch = await consumer.getmany(tp, timeout_ms=1000)
                        for record in batch.get(tp, []):
                            found = _position_in(record.key, record.value, name, found)
            except TimeoutError:
                raise TimeoutError(
                    f"reading the stored position of {name} from {tp.topic} partition "
                    f"{partition} (offsets {begin} to {end}) took over {self._timeout_s:.0f} s; "
                    "the source tries again from the start of the partition: check that the "
                    "brokers are reachable"
                ) from None
            return found
        finally:
            await consumer.stop()

    async def store(self, name: str, partition: int, batch: SourceBatch) -> None:
        """Write ``batch.position``; returns once Kafka acknowledged it (``acks=all``)."""
        record: dict[str, Any] = {
            "source": name,
            "position": batch.position,
            "position_time": batch.position_time.isoformat() if batch.position_time else None,
            "stored_at": datetime.now(UTC).isoformat(),
        }
        value = json.dumps(record, separators=(",", ":")).encode()
        await self._send(self._topic, name.encode(), value, partition)


def _position_in(
    key: bytes | None, value: bytes | None, name: str, found: Position | None
) -> Position | None:
    """The position a record stores for ``name``, else what was ``found`` before it."""
    if key != name.encode() or value is None:
        return found
    stored = _read(value)
    return stored.get("position", found)  # a record without one is not ours: skipped


def _read(value: bytes) -> dict[str, Any]:
    try:
        record = json.loads(value)
    except ValueError:
        return {}  # not ours (a foreign producer): the source starts from its older record
    return record if isinstance(record, dict) else {}
