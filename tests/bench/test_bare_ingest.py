"""``bench.bare_ingest``, the floor webhook ingest is compared with, is an acceptor all the same:
it stores a signed body and answers 200, refuses a forged signature with nothing stored, and
the burst the worker is measured with measures the acceptor's own process."""

from __future__ import annotations

import os
import time

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from bench.bare_ingest import BareAcceptor
from bench.ingest_pipeline import SECRET, _burst
from bench.proc_stat import cpu_seconds
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.kafka_harness import TopicFactory


async def _stored(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        found: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(found) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            found += [(r.key, r.value) for rs in batches.values() for r in rs]
        # a record beyond the expected ones would show here
        batches = await consumer.getmany(timeout_ms=500)
        return found + [(r.key, r.value) for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()


async def test_a_signed_body_is_stored_and_a_forged_one_refused_with_nothing_stored(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory
) -> None:
    topic = await kafka_topics.create("bare-ingest", partitions=1)
    body = b'{"source": {"entity_type": "case", "entity_id": "7"}}'
    now = int(time.time())
    with BareAcceptor(kafka_bootstrap_servers, topic, SECRET) as acceptor:
        url = f"{acceptor.url}/webhooks/bench"
        async with aiohttp.ClientSession() as session:
            forged = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign("not-it", now, body)}
            async with session.post(url, data=body, headers=forged) as answer:
                assert answer.status == 401
            signed = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(SECRET, now, body)}
            async with session.post(url, data=body, headers=signed) as answer:
                assert answer.status == 200
    # keyed by its signature: one key per delivery, spread as the worker's entity keys are
    assert await _stored(kafka_bootstrap_servers, topic, 1) == [
        (signed[SIGNATURE_HEADER].encode(), body)
    ]


async def test_the_workers_burst_measures_the_acceptors_own_process(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory
) -> None:
    topic = await kafka_topics.create("bare-ingest-burst", partitions=2)
    deliveries = 1500
    with BareAcceptor(kafka_bootstrap_servers, topic, SECRET) as acceptor:
        assert acceptor.pid != os.getpid()  # a process of its own
        before = cpu_seconds(acceptor.pid)
        burst = await _burst(acceptor.url, deliveries, 16, acceptor.pid)
        spent = cpu_seconds(acceptor.pid) - before
    # Every delivery answered 200 (a refusal stops the burst) and stored; the CPU counted is
    # the acceptor's, which 1,500 answers put well over the 10 ms tick it is counted in.
    assert spent > 0
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")  # the kernel counts CPU in ticks
    assert burst.cpu_us_per_delivery == pytest.approx(
        1e6 * spent / deliveries, abs=2 * tick_us / deliveries
    )
    assert len(await _stored(kafka_bootstrap_servers, topic, deliveries)) == deliveries
