"""normalize works in batches (``app.agents.normalize``: up to 500 raw records, their
canonical records sent as one Kafka batch per partition): a raw record's offset must never be
committed before every canonical record it caused is acknowledged by Kafka (acks=all).

A real worker process on the real broker reads a backlog of raw deliveries and is killed
(SIGKILL) once it has committed offsets and while it is still normalising, so batches are in
flight. Then, counted:

- at the moment of the kill, every raw record below the group's committed offset has its
  event on ``deskstream.events`` (the committed offsets never ran ahead of the acks);
- a second worker finishes the backlog, and every delivery's event is there: none lost.

Copies are allowed (at least once; the dedupe's one window is documented in
``app.agents.dedupe``) and printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from app.settings import Settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from schemas.codec import decode_as, encode
from schemas.models import Envelope, Platform, RawDelivery
from tests.app.test_worker_e2e import _worker_env
from tests.factories import body_of, case_event
from tests.kafka_records import committed_offsets, read_to_end

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

#: enough backlog that the worker commits (every 2.8 s, or 10,000 acks) well before it is
#: through, however fast it runs: a quiet machine normalises 12,000 records before its first
#: commit (seen in CI). Each kill comes after another quarter of it is committed.
DELIVERIES = 100_000 if os.environ.get("DESKSTREAM_SOAK") == "1" else 40_000
ENTITIES = 300


async def _fill_raw(bootstrap: str, settings: Settings) -> None:
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for n in range(DELIVERIES):
            entity = f"kill-{n % ENTITIES}"
            source = {**case_event()["source"], "entity_id": entity, "source_event_id": f"k-{n}"}
            delivery = RawDelivery(
                delivery_id=f"kill-raw-{n}",
                connector_id="crm",
                platform=Platform.GENERIC,
                received_at=now,
                body=body_of(case_event(entity, source=source)),
                signature_verified=True,
            )
            await producer.send(settings.topic("raw"), encode(delivery), key=entity.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _records(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, bytes]]:
    """Every record of ``topic`` now: (partition, offset, value)."""
    found = await read_to_end(bootstrap, topic, partitions)
    return [(r.partition, r.offset, r.value) for r in found if r.value is not None]


async def _count(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def _raw_event_id(value: bytes) -> str:
    body = json.loads(decode_as(value, RawDelivery).body)
    return str(body["source"]["source_event_id"])


async def _event_ids(bootstrap: str, settings: Settings) -> Counter[str]:
    records = await _records(bootstrap, settings.topic("events"), settings.partitions)
    return Counter(decode_as(v, Envelope).source.source_event_id or "" for _, _, v in records)


async def _check_at_kill(bootstrap: str, settings: Settings, group: str) -> int:
    """Nothing below a committed offset is missing its event (the worker is dead: what Kafka
    acknowledged is all there will ever be of its outputs). Returns the committed count."""
    raw_topic, events_topic = settings.topic("raw"), settings.topic("events")
    normalised_at_kill = await _count(bootstrap, events_topic, settings.partitions)
    committed_at_kill = await committed_offsets(bootstrap, group, raw_topic)
    sent = await _event_ids(bootstrap, settings)
    raw = await _records(bootstrap, raw_topic, settings.partitions)
    below = [
        _raw_event_id(value)
        for partition, offset, value in raw
        if offset < committed_at_kill.get(partition, 0)
    ]
    missing = [event_id for event_id in below if event_id not in sent]
    print(
        f"\n[normalize kill] committed {len(below)} of {DELIVERIES} raw records, "
        f"{normalised_at_kill} events in Kafka at the kill; missing below the commit: "
        f"{len(missing)}"
    )
    assert normalised_at_kill < DELIVERIES, "killed after the backlog was through"
    assert missing == []
    return len(below)


async def test_a_worker_killed_mid_batch_commits_nothing_ahead_of_its_acks_and_loses_nothing(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    bootstrap = kafka_bootstrap_servers
    env, settings = _worker_env(bootstrap, tmp_path)
    raw_topic, events_topic = settings.topic("raw"), settings.topic("events")
    await ensure_topics(bootstrap, topic_specs(settings))
    await _fill_raw(bootstrap, settings)
    group = env["DESKSTREAM_APP_ID"]  # Faust's consumer group is the app id

    # Killed twice: at its first commits, and again further in; checked each time.
    checked = 0
    for round_ in range(2):
        commits = checked + (1 if round_ == 0 else DELIVERIES // 4)  # more than the last kill
        with run_worker(env, port=free_port(), log=tmp_path / f"worker-{round_}.log") as worker:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with contextlib.suppress(KafkaError):  # the group may not exist yet
                    if (
                        sum((await committed_offsets(bootstrap, group, raw_topic)).values())
                        >= commits
                    ):
                        break
                await asyncio.sleep(0.05)
            worker.kill()  # mid-run: offsets committed, batches on their way
        checked = await _check_at_kill(bootstrap, settings, group)
    assert checked > 0, "the worker was killed before it committed anything: nothing checked"

    # The last worker carries on from the committed offsets: every delivery's event arrives.
    with run_worker(env, port=free_port(), log=tmp_path / "last.log"):
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if await _count(bootstrap, events_topic, settings.partitions) >= DELIVERIES:
                ids = await _event_ids(bootstrap, settings)
                if len(ids) == DELIVERIES:
                    break
            await asyncio.sleep(0.5)
    ids = await _event_ids(bootstrap, settings)
    lost = DELIVERIES - len(ids)
    copies = sum(ids.values()) - len(ids)
    print(f"[normalize kill] after the restarts: lost {lost}, copies {copies}")
    assert lost == 0
