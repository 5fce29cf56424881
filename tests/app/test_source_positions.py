"""``PositionStore`` against a real broker: a load finds the newest stored position every time.

The regression this guards: the store read the slot's partition after ``seek_to_beginning``,
which aiokafka sometimes satisfies with the answer of the reset ``assign`` had already started
(the end): the load read nothing, returned None, and a takeover restarted the source from its
first-run lookback. That happened in about two loads of three on a local broker, so repeated
loads over a partition with records make the test fail on the old read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from app.settings import load_settings
from app.source_positions import PositionStore, Send, slot_of
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from connectors.base.source import SourceBatch

pytestmark = pytest.mark.kafka

SLOTS = 4
LOADS = 15


@pytest.fixture
async def stack(kafka_bootstrap_servers: str) -> AsyncIterator[tuple[PositionStore, Send, str]]:
    """A store over a fresh ``<prefix>.sources`` topic made from the shipped topic spec, the
    producer's send it writes with, and the topic."""
    settings = load_settings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=f"positions-{uuid.uuid4().hex[:8]}",
        partitions=SLOTS,
        replication_factor=1,
    )
    topic = settings.topic("sources")
    await ensure_topics(
        kafka_bootstrap_servers, [s for s in topic_specs(settings) if s.name == topic]
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()

    async def send(topic: str, key: bytes, value: bytes, partition: int) -> None:
        await producer.send_and_wait(topic, value, key=key, partition=partition)

    try:
        yield PositionStore(kafka_bootstrap_servers, topic, send, timeout_s=20.0), send, topic
    finally:
        await producer.stop()


async def test_every_load_finds_the_newest_position_among_the_slots_records(
    stack: tuple[PositionStore, Send, str],
) -> None:
    store, send, topic = stack
    slot = slot_of("zendesk.tickets", SLOTS)
    # Two sources in one slot, positions interleaved, and a record no store wrote.
    for n in range(8):
        await store.store("zendesk.tickets", slot, SourceBatch([], {"cursor": f"t{n}"}))
        await store.store("other.feed", slot, SourceBatch([], {"cursor": f"o{n}"}))
    await send(topic, b"zendesk.tickets", b"not json", slot)  # a foreign value, same key

    loads = [await store.load("zendesk.tickets", slot) for _ in range(LOADS)]
    assert loads == [{"cursor": "t7"}] * LOADS
    assert await store.load("other.feed", slot) == {"cursor": "o7"}


async def test_a_source_never_stored_loads_none_even_beside_others(
    stack: tuple[PositionStore, Send, str],
) -> None:
    store, _, _ = stack
    slot = slot_of("zendesk.tickets", SLOTS)
    await store.store("other.feed", slot, SourceBatch([], {"cursor": "o1"}))
    assert await store.load("zendesk.tickets", slot) is None
    assert await store.load("zendesk.tickets", (slot + 1) % SLOTS) is None  # an empty slot
