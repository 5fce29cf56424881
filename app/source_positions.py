"""Where each pull-based source stands, kept in Kafka: the compacted ``<prefix>.sources`` topic.

A source's positions are records keyed by its name in the partition of its slot
(``slot_of``), the same partition whose assignment in the consumer group is the source's
lease (``app.agents.sources``). Only the lease holder writes there, so the newest record for
the name is the position to resume from. Compaction keeps the newest per name; reading the
partition from its start to its end on every lease is therefore short.

A stored record: ``{"source", "position", "position_time", "stored_at"}`` as JSON.
"""

from __future__ import annotations

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
    def __init__(self, bootstrap_servers: str, topic: str, send: Send) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._send = send

    async def load(self, name: str, partition: int) -> Position | None:
        """The newest stored position of ``name`` (None: never stored, a first run)."""
        tp = TopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            await consumer.seek_to_beginning(tp)
            found: Position | None = None
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.key == name.encode() and record.value is not None:
                        stored = _read(record.value)
                        if "position" in stored:  # a record of ours; anything else is skipped
                            found = stored["position"]
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


def _read(value: bytes) -> dict[str, Any]:
    try:
        record = json.loads(value)
    except ValueError:
        return {}  # not ours (a foreign producer): the source starts from its older record
    return record if isinstance(record, dict) else {}
