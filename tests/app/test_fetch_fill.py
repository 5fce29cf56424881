"""Fuller fetches while records pour in (``app.fetch_fill``), on a real broker: a fetch asks
for the fuller fetch exactly when the one before it brought records and the partitions grew
by the fill's minimum rate; records of a trickle are each answered by a fetch of the
consumer's own settings, so are records after a pause; and every record is read once."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from typing import Any, NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.fetch_fill import FetchFill, fill_fetches
from tests.kafka_harness import TopicFactory

pytestmark = pytest.mark.kafka

#: the consumer's own settings (Faust's worker: 1 byte, 1,500 ms; shorter here)
OWN_MIN_BYTES, OWN_WAIT_MS = 1, 300
#: never reached by this test's records, so a fuller fetch always waits its window out
FILL_BYTES, FILL_WAIT_MS = 1 << 20, 100
#: the pour (bursts of 25 records every 20 ms: about 1,000 a second, even on a slow machine
#: several hundred) is above it, the trickle (a record every 150 ms) far below
MIN_RATE = 200.0
BURSTS, BURST, BURST_GAP_S = 40, 25, 0.02
TRICKLE, TRICKLE_GAP_S = 6, 0.15
POURED = BURSTS * BURST


class Fetch(NamedTuple):
    phase: str
    min_bytes: int
    max_wait_ms: int
    rate_before: float
    brought_records: bool

    @property
    def fuller(self) -> bool:
        return (self.min_bytes, self.max_wait_ms) == (FILL_BYTES, FILL_WAIT_MS)

    @property
    def own(self) -> bool:
        return (self.min_bytes, self.max_wait_ms) == (OWN_MIN_BYTES, OWN_WAIT_MS)


class Recorder:
    """Notes each fetch request as the fetcher sends it (inside the fill, so with the
    settings the fill chose), the rate the fill knew then, and whether it brought records."""

    def __init__(self, fetcher: Any) -> None:
        self.phase = "pour"
        self.fetches: list[Fetch] = []
        self.fill: FetchFill | None = None
        self._send = fetcher._proc_fetch_request
        fetcher._proc_fetch_request = self._recorded

    async def _recorded(self, assignment: Any, node_id: int, request: Any) -> bool:
        assert self.fill is not None
        phase, rate = self.phase, self.fill.rate(node_id)
        brought = bool(await self._send(assignment, node_id, request))
        self.fetches.append(Fetch(phase, request._min_bytes, request._max_wait_ms, rate, brought))
        return brought


async def read_until(consumer: AIOKafkaConsumer, count: int, within_s: float) -> list[int]:
    offsets: list[int] = []
    deadline = time.monotonic() + within_s
    while len(offsets) < count and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=100)
        offsets += [r.offset for rs in batch.values() for r in rs]
    return offsets


async def pour(producer: AIOKafkaProducer, topic: str) -> None:
    for _ in range(BURSTS):
        sent = [await producer.send(topic, b"x" * 200) for _ in range(BURST)]
        await asyncio.gather(*sent)
        await asyncio.sleep(BURST_GAP_S)


async def trickle(producer: AIOKafkaProducer, topic: str) -> None:
    for _ in range(TRICKLE):
        await producer.send_and_wait(topic, b"one")
        await asyncio.sleep(TRICKLE_GAP_S)


async def test_fetches_fill_while_records_pour_in_and_answer_a_trickle_at_once(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory
) -> None:
    topic = await kafka_topics.create("fill")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        fetch_min_bytes=OWN_MIN_BYTES,
        fetch_max_wait_ms=OWN_WAIT_MS,
    )
    await producer.start()
    try:
        await consumer.start()
        recorder = Recorder(consumer._fetcher)
        fill = recorder.fill = fill_fetches(consumer._fetcher, FILL_BYTES, FILL_WAIT_MS, MIN_RATE)
        reading = asyncio.create_task(read_until(consumer, POURED, 30))
        await pour(producer, topic)
        poured = await reading
        recorder.phase = "pause"
        await asyncio.sleep(1.0)  # a fuller fetch waits its window out empty, then ours
        recorder.phase = "trickle"
        reading = asyncio.create_task(read_until(consumer, TRICKLE, 30))
        await trickle(producer, topic)
        trickled = await reading
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await producer.stop()

    assert poured == list(range(POURED)), "every record once, in order"
    assert trickled == list(range(POURED, POURED + TRICKLE))
    fetches = recorder.fetches
    assert all(f.fuller or f.own for f in fetches)
    assert fetches[0].own, "the first fetch of all is the consumer's own"
    # the rule, fetch by fetch: fuller exactly when the one before brought records and the
    # partitions grew by the minimum rate
    for before, fetch in pairwise(fetches):
        wanted = before.brought_records and fetch.rate_before >= MIN_RATE
        assert fetch.fuller == wanted, (before, fetch)
    # both sides of the rule happened: fuller fetches bringing records while records poured
    # in, and while they trickled, fetches after one that brought records were the
    # consumer's own (the broker's last fetch brought records, the rate was too low)
    assert sum(f.brought_records for f in fetches if f.phase == "pour" and f.fuller) >= 2
    trickling = [f for f in fetches if f.phase == "trickle"]
    assert any(b.brought_records for b, _ in pairwise(trickling))
    assert all(f.own for f in trickling), "a trickle is answered at once at every fetch"
    assert fill.flowing == set(), "the last fetch came back empty: the broker is idle again"
