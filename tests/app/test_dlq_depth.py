"""``deskstream_dlq_depth`` against a real broker: the dead letters past the retry group."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.dlq_depth import waiting_letters
from tests.kafka_harness import TopicFactory


async def test_waiting_letters_are_those_past_the_retry_groups_offsets(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory
) -> None:
    topic = await kafka_topics.create("dlq", partitions=2)
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"letter {i}".encode(), partition=i % 2)
    finally:
        await producer.stop()
    group = f"test-dlq-retry-{uuid.uuid4().hex[:8]}"
    watcher = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await watcher.start()
    try:
        assert await waiting_letters(watcher, partitions) == 5  # never retried: all of them

        # `deskstream dlq retry` commits the group's offsets once it re-sent what it read.
        retry = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await retry.start()
        try:
            retry.assign(partitions)
            await retry.commit({partitions[0]: 3})  # partition 0 holds letters 0, 2 and 4
        finally:
            await retry.stop()

        assert await waiting_letters(watcher, partitions) == 2
    finally:
        await watcher.stop()
