"""``deskstream reconcile`` (``app.reconcile_cli``) on a Salesforce connector, against a real
broker and the Salesforce sandbox: the pass starts from the worker's stored reconcile position,
so it compares with that memory (a lost change is sent as the change it is, an unchanged record
not at all) and reaches back to ``--since``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.pull import RawWriter
from app.reconcile_cli import run_reconcile
from app.settings import load_settings
from app.source_positions import slot_of
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from connectors.base.source import SourceBatch
from connectors.salesforce.raw import RecordBody, decode_body
from schemas.codec import decode_as
from schemas.models import RawDelivery
from tests.connectors.salesforce.source_harness import build, driving, source_settings_for
from tests.sandboxes.salesforce.conftest import SalesforceEnv

pytestmark = pytest.mark.kafka


async def _raw(bootstrap: str, topic: str, partitions: int) -> list[RawDelivery]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found: list[RawDelivery] = []
        for tp in tps:
            consumer.seek(tp, 0)
            while ends[tp] and await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += [decode_as(r.value or b"", RawDelivery) for r in batch.get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def test_a_salesforce_pass_compares_with_the_workers_stored_memory(
    kafka_bootstrap_servers: str, env: SalesforceEnv
) -> None:
    connector = source_settings_for(env, "reconcile", poll_seconds=0.2, window_seconds=60)
    settings = load_settings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=f"reconcile-{uuid.uuid4().hex[:8]}",
        partitions=2,
        replication_factor=1,
        connectors={"sf": connector},
    )
    wanted = {settings.topic("raw"), settings.topic("sources")}
    await ensure_topics(
        kafka_bootstrap_servers, [s for s in topic_specs(settings) if s.name in wanted]
    )
    changed = await env.create("Case", {"Subject": "solved while down", "Status": "New"})
    await env.create("Case", {"Subject": "untouched", "Status": "New"})
    # The worker's scheduled pass read both, and stored what it read.
    async with driving(await build(env, connector, "reconcile")) as worker:
        await worker.until_caught_up()
        memory = worker.position
    assert memory is not None
    raw, sources = settings.topic("raw"), settings.topic("sources")
    async with RawWriter(kafka_bootstrap_servers, raw, sources) as writer:
        slot = slot_of("sf.reconcile", settings.partitions)
        await writer.positions.store("sf.reconcile", slot, SourceBatch([], memory))
    env.clock.advance(2)
    await env.update("Case", changed, {"Status": "Escalated"})  # its change event was lost

    since = (env.clock.now() - timedelta(minutes=10)).isoformat()  # the sandbox's clock
    sent = await run_reconcile(settings, since=since, only=("sf",))
    assert sent == 1
    [delivery] = await _raw(kafka_bootstrap_servers, settings.topic("raw"), settings.partitions)
    body = decode_body(delivery.body)
    assert isinstance(body, RecordBody)
    assert (body.record_id, body.changed) == (changed, ["Status"])  # a change, not a copy
