"""End to end through a real worker process and a real broker: webhook in → canonical event out.

The worker runs as ``python -m app worker`` with its own topic prefix and consumer group, so it
shares the session broker with other tests without seeing their records. Everything is
counted: a forged delivery leaves no record anywhere; a malformed one is in quarantine, not in
events; a redelivered or replayed delivery leaves one record on the canonical topic.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from schemas.codec import decode_as
from schemas.models import Envelope, QuarantineRecord, RawDelivery
from tests.factories import body_of, case_event, signed_headers

pytestmark = pytest.mark.kafka

SECRET = "e2e-webhook-secret"


@dataclass(frozen=True)
class Worker:
    url: str
    settings: Settings
    bootstrap: str
    log: Path


def _worker_env(bootstrap: str, folder: Path) -> tuple[dict[str, str], Settings]:
    """A worker of its own (app id, topic prefix, state) and the settings it runs with."""
    run = uuid.uuid4().hex[:8]
    (folder / "secret").write_text(SECRET)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_APP_ID": f"deskstream-e2e-{run}",
        "DESKSTREAM_TOPIC_PREFIX": f"e2e-{run}",
        "DESKSTREAM_PARTITIONS": "4",
        "DESKSTREAM_REPLICATION_FACTOR": "1",
        "DESKSTREAM_STATE_DIR": str(folder),
        "DESKSTREAM_CONNECTORS__crm__PLATFORM": "generic",
        "DESKSTREAM_CONNECTORS__crm__SECRET_FILE": str(folder / "secret"),
    }
    settings = load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=env["DESKSTREAM_TOPIC_PREFIX"],
        app_id=env["DESKSTREAM_APP_ID"],
        partitions=4,
        replication_factor=1,
    )
    return env, settings


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    folder = tmp_path_factory.mktemp("worker")
    env, settings = _worker_env(kafka_bootstrap_servers, folder)
    asyncio.run(ensure_topics(kafka_bootstrap_servers, topic_specs(settings)))
    with run_worker(env, port=free_port(), log=folder / "worker.log") as running:
        yield Worker(
            url=running.url, settings=settings, bootstrap=kafka_bootstrap_servers, log=running.log
        )


async def _read(bootstrap: str, topic: str, expected: int, *, settle: float = 2.0) -> list[bytes]:
    """Every record of ``topic``: waits for ``expected`` of them, then a little longer so an
    unexpected extra record would be seen too (counts are asserted, not times)."""
    return await _read_while(bootstrap, topic, lambda values: len(values) < expected, settle)


async def _read_while(
    bootstrap: str, topic: str, waiting: Callable[[list[bytes]], bool], settle: float
) -> list[bytes]:
    """Every record of ``topic``, read while ``waiting(values so far)`` and ``settle`` s more."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            values += [r.value for records in batch.values() for r in records]
            if not waiting(values):
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return values


@pytest.fixture
async def client(worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as http:
        yield http


async def _post(client: httpx.AsyncClient, body: bytes, secret: str = SECRET) -> int:
    headers = signed_headers(secret, body, at=datetime.now(UTC))  # freshness uses a real clock
    response = await client.post("/webhooks/crm", content=body, headers=headers)
    if response.status_code == 200:  # the answer senders have always had, byte for byte
        delivery_id = response.json()["delivery_id"]
        assert isinstance(delivery_id, str)
        assert delivery_id
        expected = {"status": "accepted", "delivery_id": delivery_id}
        assert response.content == json.dumps(expected, separators=(",", ":")).encode()
        assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.status_code


async def test_webhooks_become_canonical_events_and_nothing_authenticated_is_lost(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    now = time.time()
    events = [
        case_event(
            f"case-{n % 5}",
            source={
                **case_event()["source"],
                "entity_id": f"case-{n % 5}",
                "source_event_id": f"evt-{n}",
            },
        )
        for n in range(20)
    ]
    bodies = [body_of(e) for e in events]
    statuses = [await _post(client, b) for b in bodies]
    statuses += [await _post(client, bodies[0]), await _post(client, bodies[7])]  # redeliveries
    statuses.append(await _post(client, b'{"source": '))  # authenticated, malformed
    forged = await _post(client, body_of(case_event("forged")), secret="guess")
    assert statuses == [200] * 23
    assert forged == 401

    s = worker.settings
    raw = [decode_as(v, RawDelivery) for v in await _read(worker.bootstrap, s.topic("raw"), 23)]
    canonical = [
        decode_as(v, Envelope) for v in await _read(worker.bootstrap, s.topic("events"), 20)
    ]
    quarantined = [
        decode_as(v, QuarantineRecord)
        for v in await _read(worker.bootstrap, s.topic("quarantine"), 1)
    ]

    assert len(raw) == 23  # the forged delivery is nowhere
    assert all(d.signature_verified and d.connector_id == "crm" for d in raw)
    assert len(canonical) == 20  # the two redeliveries are dropped before the canonical topic
    assert len({e.event_id for e in canonical}) == 20
    assert {e.source.entity_id for e in canonical} == {f"case-{n}" for n in range(5)}
    assert all(e.ingested_at.timestamp() >= now - 5 for e in canonical)
    [record] = quarantined
    assert record.delivery.body == b'{"source": '
    assert "not JSON" in record.reason


async def _read_until(bootstrap: str, topic: str, last_id: str) -> list[Envelope]:
    """The topic's events up to the one with source event id ``last_id``, and a moment more
    (an extra copy would be seen too)."""

    def waiting(values: list[bytes]) -> bool:
        return not any(decode_as(v, Envelope).source.source_event_id == last_id for v in values)

    return [decode_as(v, Envelope) for v in await _read_while(bootstrap, topic, waiting, 1.0)]


def _counter(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name)
    )


def _entity_body(entity: str, n: int) -> bytes:
    source = {**case_event()["source"], "entity_id": entity, "source_event_id": f"{entity}-{n}"}
    return body_of(case_event(entity, source=source))


async def _replay_raw(bootstrap: str, settings: Settings, entity: str, topic: str = "raw") -> int:
    """Write the entity's records again, as they were (a replay of the raw topic, or of
    ``topic``: those whose key names ``entity``)."""
    raw_topic = settings.topic(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(raw_topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp, start in (await consumer.beginning_offsets(tps)).items():
            consumer.seek(tp, start)
        mine = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500)
            mine += [r for rs in batch.values() for r in rs if entity.encode() in (r.key or b"")]
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in mine:
            await producer.send_and_wait(
                raw_topic, record.value, key=record.key, headers=list(record.headers)
            )
    finally:
        await producer.stop()
    return len(mine)


async def test_a_redelivered_or_replayed_webhook_is_one_record_on_the_canonical_topic(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    entity = f"dedupe-{uuid.uuid4().hex[:6]}"

    def body(n: int) -> bytes:
        return _entity_body(entity, n)

    dropped = "deskstream_duplicate_events_dropped_total"
    taken = 'deskstream_batch_inputs_sum{agent="normalize"}'  # records in normalize's batches
    metrics = (await client.get("/metrics")).text
    before, taken_before = _counter(metrics, dropped), _counter(metrics, taken)
    # The same webhook delivered three times, then another event of the entity: its events
    # share a raw partition, so once the second event is out the copies were handled.
    assert [await _post(client, body(1)) for _ in range(3)] == [200, 200, 200]
    assert await _post(client, body(2)) == 200
    events_topic = worker.settings.topic("events")
    await _read_until(worker.bootstrap, events_topic, f"{entity}-2")

    # A replay of the raw topic: the entity's raw records written again, as they were.
    assert await _replay_raw(worker.bootstrap, worker.settings, entity) == 4
    assert await _post(client, body(3)) == 200

    events = await _read_until(worker.bootstrap, events_topic, f"{entity}-3")
    ids = [e.source.source_event_id or "" for e in events if e.source.entity_id == entity]
    assert sorted(ids) == [f"{entity}-1", f"{entity}-2", f"{entity}-3"]
    metrics = (await client.get("/metrics")).text
    assert _counter(metrics, dropped) - before == 2 + 4  # two redeliveries, four replayed records
    # every raw record went through normalize's batches, the dropped ones too: 4 + 4 + 1
    assert _counter(metrics, taken) - taken_before == 9


async def test_a_restarted_worker_still_drops_what_was_sent_before(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    """The ids live in the recent_events table: a new worker process restores them from the
    changelog and drops a replay of the raw topic."""
    env, settings = _worker_env(kafka_bootstrap_servers, tmp_path)
    await ensure_topics(kafka_bootstrap_servers, topic_specs(settings))
    entity = f"restart-{uuid.uuid4().hex[:6]}"
    events_topic = settings.topic("events")
    with run_worker(env, port=free_port(), log=tmp_path / "first.log") as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
            assert [await _post(http, _entity_body(entity, 1)) for _ in range(2)] == [200, 200]
            await _read_until(kafka_bootstrap_servers, events_topic, f"{entity}-1")
    with run_worker(env, port=free_port(), log=tmp_path / "second.log") as second:
        assert await _replay_raw(kafka_bootstrap_servers, settings, entity) == 2
        async with httpx.AsyncClient(base_url=second.url, timeout=10) as http:
            assert await _post(http, _entity_body(entity, 2)) == 200
        events = await _read_until(kafka_bootstrap_servers, events_topic, f"{entity}-2")
    ids = sorted(e.source.source_event_id or "" for e in events)
    assert ids == [f"{entity}-1", f"{entity}-2"]


async def test_events_of_one_entity_keep_their_order(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    entity = f"ordered-{uuid.uuid4().hex[:6]}"
    for n in range(15):
        source = {**case_event()["source"], "entity_id": entity, "source_event_id": f"{entity}-{n}"}
        assert await _post(client, body_of(case_event(entity, source=source))) == 200
    values = await _read(worker.bootstrap, worker.settings.topic("events"), 15, settle=0.5)
    mine = [decode_as(v, Envelope) for v in values]
    mine = [e for e in mine if e.source.entity_id == entity]
    assert [e.source.source_event_id for e in mine] == [f"{entity}-{n}" for n in range(15)]


async def test_a_record_that_is_not_a_raw_delivery_is_quarantined_not_fatal(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    marker = f"poison-{uuid.uuid4().hex}".encode()
    producer = AIOKafkaProducer(bootstrap_servers=worker.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(worker.settings.topic("raw"), marker, key=b"foreign")
    finally:
        await producer.stop()
    # The worker carries on: a delivery after the poison pill is still normalised.
    after = f"after-{uuid.uuid4().hex[:6]}"
    assert await _post(client, body_of(case_event(after))) == 200

    quarantine = worker.settings.topic("quarantine")
    records = [decode_as(v, QuarantineRecord) for v in await _read(worker.bootstrap, quarantine, 2)]
    [poison] = [r for r in records if r.delivery.body == marker]
    assert poison.delivery.connector_id == "(unknown)"
    assert "not a RawDelivery" in poison.reason
    events = [
        decode_as(v, Envelope)
        for v in await _read(worker.bootstrap, worker.settings.topic("events"), 1)
    ]
    assert any(e.source.entity_id == after for e in events)


async def test_health_ready_and_metrics_describe_the_worker(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    ready = (await client.get("/ready")).json()
    assert ready["ready"] is True
    # One input topic (raw) and the recent_events changelog, four partitions each, one
    # worker: it holds all eight.
    assert ready["checks"]["assigned_partitions"] == 8
    metrics = (await client.get("/metrics")).text
    accepted = [
        line
        for line in metrics.splitlines()
        if line.startswith('deskstream_webhooks_total{connector="crm",outcome="accepted"}')
    ]
    assert len(accepted) == 1
    assert float(accepted[0].rsplit(" ", 1)[1]) >= 1
    assert "faust_messages_received" in metrics
    # The start-up heap is frozen once the worker has started (app.gc_pauses), and every
    # collection is timed: the freeze's own full collection at least.
    deadline = time.monotonic() + 30
    while _counter(metrics, "deskstream_gc_frozen_objects") == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        metrics = (await client.get("/metrics")).text
    assert _counter(metrics, "deskstream_gc_frozen_objects") > 10_000
    assert _counter(metrics, 'deskstream_gc_pause_seconds_count{generation="2"}') >= 1
    unknown = await client.post("/webhooks/not-configured", content=b"{}")
    assert unknown.status_code == 404
