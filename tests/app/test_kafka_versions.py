"""Every Kafka version the README supports, on a node of its own started by the local stack.

The suite runs on the default version (``app.settings``); this starts each supported one from
its Maven Central jars (storage format, the log configuration of its generation, its broker
properties) and does what a worker does with a cluster: Deskstream's topics created and
checked for drift, records produced with ``acks=all`` and idempotence, read back by a
consumer group that commits. ``DESKSTREAM_KAFKA_VERSION=3.9.2 make test`` runs the whole
suite on the oldest.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka_local import start_cluster, stop_cluster
from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from tests.kafka_harness import (
    TEST_STATE_DIR,
    VERSIONS_PORT_BASE,
    harness_settings,
    local_stack_missing,
    unavailable,
)

pytestmark = [pytest.mark.kafka, pytest.mark.java]

#: the releases supported (3.9 for clusters not yet on 4.x, the newest 4.x), the default, and
#: the one this run was asked for (DESKSTREAM_KAFKA_VERSION)
SUPPORTED = sorted(
    {
        "3.9.2",
        "4.4.0",
        str(Settings.model_fields["kafka_version"].default),
        load_settings().kafka_version,
    }
)
RECORDS = 200


@pytest.fixture(params=SUPPORTED)
def node(request: pytest.FixtureRequest) -> Iterator[Settings]:
    missing = local_stack_missing()
    if missing:
        unavailable(f"the local Kafka stack cannot run here: {missing}")
    version: str = request.param
    index = SUPPORTED.index(version)
    settings = harness_settings(1, VERSIONS_PORT_BASE + 10 * index).model_copy(
        update={"state_dir": TEST_STATE_DIR / "versions" / version, "kafka_version": version}
    )
    stop_cluster(settings, purge=True)  # whatever a crashed earlier run left behind
    try:
        yield settings
    finally:
        stop_cluster(settings, purge=True)


async def test_a_node_of_each_supported_version_serves_what_a_worker_needs(
    node: Settings,
) -> None:
    info = await asyncio.to_thread(start_cluster, node)
    assert info.kafka_version == node.kafka_version
    assert info.registered is not None
    assert sorted(info.registered) == [1]
    bootstrap = info.bootstrap_servers

    settings = node.model_copy(
        update={
            "kafka_bootstrap_servers": bootstrap,
            "topic_prefix": "versions",
            "partitions": 2,
            "replication_factor": 1,
        }
    )
    specs = topic_specs(settings)
    first = await ensure_topics(bootstrap, specs)
    again = await ensure_topics(bootstrap, specs)
    assert sorted(first.created) == sorted(spec.name for spec in specs)
    assert again.created == []
    assert again.drift == []

    topic = settings.topic("raw")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(RECORDS):
            await producer.send(topic, key=str(i % 5).encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    group = f"versions-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    values: list[int] = []
    try:
        async with asyncio.timeout(60):
            while len(values) < RECORDS:
                batch = await consumer.getmany(timeout_ms=1000)
                values += [int(r.value or b"") for rs in batch.values() for r in rs]
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1)]
    finally:
        await consumer.stop()
    assert sorted(values) == list(range(RECORDS))  # each once
    assert sum(committed) == RECORDS
