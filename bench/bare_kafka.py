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

from bench.figures import percentile

__all__ = ["LoopFigures", "bare_acks", "bare_loop"]


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


async def bare_acks(
    bootstrap: str, topic: str, *, sends: int = 500, rate: float = 200.0
) -> tuple[float, float]:
    """(p50, p99) in ms of one record's ``acks=all`` round trip from a bare producer, one
    record at a time at ``rate``: what any ingest answer waits for at least."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    latencies: list[float] = []
    try:
        for n in range(sends):
            started = time.perf_counter()
            await (await producer.send(topic, b"x" * 600, key=str(n).encode()))
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, 1 / rate - latencies[-1]))
    finally:
        await producer.stop()
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
