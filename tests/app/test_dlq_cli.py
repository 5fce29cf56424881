"""``deskstream dlq retry`` against a real broker: each dead letter is re-sent exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.cli import main
from app.dead_letters import Unreadable, unreadable_headers
from app.dlq_cli import _retry, read_letters
from app.settings import Settings, get_settings, load_settings
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


async def _fresh_topics(bootstrap: str) -> Settings:
    settings = load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"dlq-{uuid.uuid4().hex[:8]}",
        app_id=f"dlq-{uuid.uuid4().hex[:8]}",
        partitions=2,
        replication_factor=1,
    )
    await ensure_topics(bootstrap, topic_specs(settings))
    return settings


async def test_retry_resends_each_dead_letter_once(kafka_bootstrap_servers: str) -> None:
    settings = await _fresh_topics(kafka_bootstrap_servers)
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

    assert len(await read_letters(settings)) == 2
    assert await _retry(settings, dry_run=True) == 2
    assert await _retry(settings, dry_run=False) == 2
    assert await _retry(settings, dry_run=False) == 0  # progress was committed
    resent = await _commands(kafka_bootstrap_servers, settings.topic("commands.salesforce"), 2)
    assert sorted(c.command_id for c in resent) == ["cmd-0", "cmd-1"]
    assert {c.attempt for c in resent} == {COMMAND.attempt + 1}


async def test_an_unreadable_command_is_kept_and_sent_back_byte_for_byte(
    kafka_bootstrap_servers: str,
) -> None:
    settings = await _fresh_topics(kafka_bootstrap_servers)
    source = settings.topic("commands.zendesk")
    newer = b"\xc3\x01written by a newer Deskstream"  # what the sink agent could not decode
    headers = unreadable_headers(source, b"zendesk:lnk_1", "unknown schema fingerprint")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic("dlq"), newer, key=b"zendesk:unreadable", headers=headers
        )
    finally:
        await producer.stop()

    [letter] = await read_letters(settings)
    assert isinstance(letter, Unreadable)
    assert (letter.source_topic, letter.key, letter.value) == (source, b"zendesk:lnk_1", newer)
    assert await _retry(settings, dry_run=False) == 1
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    back = [(r.key, r.value) for rs in batch.values() for r in rs]
    assert back == [(b"zendesk:lnk_1", newer)]


def test_list_says_in_one_line_that_kafka_did_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens
    monkeypatch.delenv("DESKSTREAM_SCHEMA_REGISTRY_URL", raising=False)
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["dlq", "list"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert exit_.value.code == 1
    assert err.startswith("error: Kafka did not answer (KafkaConnectionError")
    assert "DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS" in err
    assert "Traceback" not in err
