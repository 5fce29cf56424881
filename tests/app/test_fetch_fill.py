"""Fuller fetches while records flow (``app.fetch_fill``), on a real broker: every fetch after
one that brought records asks for the fuller fetch, every fetch after an empty one goes back
to the consumer's own settings, and every record is read once."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any, NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.fetch_fill import fill_fetches
from tests.kafka_harness import TopicFactory

pytestmark = pytest.mark.kafka

#: the consumer's own settings (Faust's worker: 1 byte, 1,500 ms; shorter here)
OWN_MIN_BYTES, OWN_WAIT_MS = 1, 300
#: never reached by this test's records, so a fuller fetch always waits its window out
FILL_BYTES, FILL_WAIT_MS = 1 << 20, 100


class Fetch(NamedTuple):
    min_bytes: int
    max_wait_ms: int
    brought_records: bool


def record_fetches(fetcher: Any) -> list[Fetch]:
    """Note each fetch request as the fetcher sends it, and whether it brought records."""
    fetches: list[Fetch] = []
    send = fetcher._proc_fetch_request

    async def recorded(assignment: Any, node_id: int, request: Any) -> bool:
        brought = bool(await send(assignment, node_id, request))
        fetches.append(Fetch(request._min_bytes, request._max_wait_ms, brought))
        return brought

    fetcher._proc_fetch_request = recorded
    return fetches


async def read(consumer: AIOKafkaConsumer, count: int) -> list[int]:
    offsets: list[int] = []
    for _ in range(100):
        batch = await consumer.getmany(timeout_ms=200)
        offsets += [r.offset for rs in batch.values() for r in rs]
        if len(offsets) >= count:
            break
    return offsets


async def test_fetches_fill_while_records_flow_and_answer_at_once_after_a_pause(
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
        # a few records a fetch, so that several fetches in a row bring records
        max_partition_fetch_bytes=1024,
    )
    await producer.start()
    try:
        for i in range(40):  # a record batch each: a fetch of 1 KiB brings a few of them
            await producer.send_and_wait(topic, b"x" * 200, key=str(i).encode())
        await consumer.start()
        fetches = record_fetches(consumer._fetcher)
        fill = fill_fetches(consumer._fetcher, FILL_BYTES, FILL_WAIT_MS)
        first = await read(consumer, 40)
        await asyncio.sleep(1.0)  # the fuller fetch waits its window out empty, then ours
        await producer.send_and_wait(topic, b"after a pause")
        after_pause = await read(consumer, 1)
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await producer.stop()

    assert first == list(range(40)), "every record once, in order"
    assert after_pause == [40]
    fuller = (FILL_BYTES, FILL_WAIT_MS)
    own = (OWN_MIN_BYTES, OWN_WAIT_MS)
    asked = [(f.min_bytes, f.max_wait_ms) for f in fetches]
    # the first fetch of all is the consumer's own; each later one follows the one before
    assert asked[0] == own
    for before, fetch in pairwise(fetches):
        assert (fetch.min_bytes, fetch.max_wait_ms) == (fuller if before.brought_records else own)
    # both turns happened: records flowing (several fuller fetches bringing records) and a
    # pause (a fuller fetch that came back empty, followed by one of the consumer's own)
    assert sum(f.brought_records for f in fetches if (f.min_bytes, f.max_wait_ms) == fuller) >= 2
    assert any(
        (before.min_bytes, before.max_wait_ms) == fuller
        and not before.brought_records
        and (fetch.min_bytes, fetch.max_wait_ms) == own
        for before, fetch in pairwise(fetches)
    )
    # the record after the pause came in a fetch of the consumer's own settings
    last_with_records = [f for f in fetches if f.brought_records][-1]
    assert (last_with_records.min_bytes, last_with_records.max_wait_ms) == own
    assert fill.flowing == set(), "the last fetch came back empty: the broker is idle again"
