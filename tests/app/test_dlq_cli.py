"""``deskstream dlq retry`` against a real broker: each dead letter is re-sent exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.dlq_cli import _read_all, _retry
from app.settings import load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from schemas.codec import decode_as, encode
from schemas.models import DeadLetter, SyncCommand
from tests.schemas.examples import COMMAND, T0

pytestmark = pytest.mark.kafka


async def _commands(bootstrap: str, topic: str, expected: int) -> list[SyncCommand]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[SyncCommand] = []
    try:
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=250)
            found += [decode_as(r.value, SyncCommand) for rs in batch.values() for r in rs]
            if len(found) > expected:
                break
        await asyncio.sleep(0.5)
        batch = await consumer.getmany(timeout_ms=250)
        found += [decode_as(r.value, SyncCommand) for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return found


async def test_retry_resends_each_dead_letter_once(kafka_bootstrap_servers: str) -> None:
    settings = load_settings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=f"dlq-{uuid.uuid4().hex[:8]}",
        app_id=f"dlq-{uuid.uuid4().hex[:8]}",
        partitions=2,
        replication_factor=1,
    )
    await ensure_topics(kafka_bootstrap_servers, topic_specs(settings))
    letters = [
        DeadLetter(
            command=COMMAND.model_copy(update={"command_id": f"cmd-{n}"}),
            error_kind="fatal_api",
            error_message="422",
            status_code=422,
            attempts=3,
            first_failed_at=T0,
            last_failed_at=T0,
        )
        for n in range(2)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(settings.topic("dlq"), encode(letter), key=b"k")
    finally:
        await producer.stop()

    assert len(await _read_all(settings)) == 2
    assert await _retry(settings, dry_run=True) == 2
    assert await _retry(settings, dry_run=False) == 2
    assert await _retry(settings, dry_run=False) == 0  # progress was committed
    resent = await _commands(kafka_bootstrap_servers, settings.topic("commands.salesforce"), 2)
    assert sorted(c.command_id for c in resent) == ["cmd-0", "cmd-1"]
    assert {c.attempt for c in resent} == {COMMAND.attempt + 1}
