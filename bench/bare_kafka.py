"""The baseline a Kafka stage is measured against: a bare aiokafka consume→produce loop.

What the same broker and cores do without any framework, in the same run as the figure it
is compared with: a consumer in a group of its own reads ``records`` records from the
beginning of ``source``, sends each one's bytes to ``target`` (``outputs`` times, as a stage
that writes one record per input to several topics would), waits for ``acks=all`` and commits
after every fetched batch. At-least-once, like the stages; nothing decoded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

__all__ = ["LoopFigures", "bare_loop"]


@dataclass(frozen=True, slots=True)
class LoopFigures:
    records_per_s: float
    #: CPU of this process per input record (it runs nothing else meanwhile)
    cpu_us_per_record: float


async def bare_loop(
    bootstrap: str, source: str, target: str, records: int, *, outputs: int = 1
) -> LoopFigures:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await consumer.start()
    await producer.start()
    try:
        seen = 0
        started = cpu = 0.0
        while seen < records:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if not batch:
                continue
            if not seen:
                started, cpu = time.perf_counter(), time.process_time()
            sends: list[Awaitable[Any]] = []
            for partition_records in batch.values():
                for record in partition_records:
                    for _ in range(outputs):
                        sends.append(await producer.send(target, record.value, key=record.key))
                    seen += 1
            await asyncio.gather(*sends)
            await consumer.commit()
        elapsed = time.perf_counter() - started
        return LoopFigures(seen / elapsed, 1e6 * (time.process_time() - cpu) / seen)
    finally:
        await producer.stop()
        await consumer.stop()
