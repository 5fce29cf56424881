"""Webhook ingest and normalize throughput of one worker, against the design targets.

    .venv/bin/python -m bench.ingest_pipeline [--deliveries 5000] [--concurrency 64]

Starts (or reuses) the local Kafka stack, creates a private set of topics, runs one worker
process, then measures:

1. ingest: signed generic webhooks posted over keep-alive HTTP connections; each answer
   waits for Kafka's acks=all. Figures: deliveries/s and acknowledge latency p50/p99.
2. normalize: RawDelivery records produced straight into the raw topic; figure: canonical
   events/s written to the events topic by the worker's normalize agent.

The load generator shares this machine's two cores with the worker and the broker, so the
figures are lower bounds of what a worker does on its own cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.kafka_local.stack import start_cluster
from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from bench.figures import row
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from schemas.codec import encode
from schemas.models import Platform, RawDelivery

TARGET_INGEST_PER_S = 2000
TARGET_ACK_P99_MS = 50
TARGET_PIPELINE_PER_S = 5000
SECRET = "bench-secret"


def _body(n: int) -> bytes:
    return json.dumps(
        {
            "source": {
                "entity_type": "case",
                "entity_id": f"case-{n % 500}",
                "event_type": "case.updated",
                "source_event_id": f"bench-{n}",
                "actor": {"kind": "agent", "id": "7"},
                "occurred_at": "2026-11-21T10:00:00Z",
            },
            "op": "update",
            "changed_fields": ["status"],
            "data": {"type": "case", "subject": f"Ticket {n}", "status": "open", "tags": ["a"]},
        }
    ).encode()


async def _ingest(url: str, deliveries: int, concurrency: int) -> tuple[float, list[float]]:
    # aiohttp's client rather than httpx: on two shared cores the load generator must cost as
    # little CPU as possible, and aiohttp's costs several times less per request.
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(deliveries):
        queue.put_nowait(n)

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = _body(n)
            ts = int(time.time())
            headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(SECRET, ts, body)}
            started = time.perf_counter()
            async with session.post(
                f"{url}/webhooks/bench", data=body, headers=headers
            ) as response:
                await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    raise RuntimeError(f"delivery {n}: {response.status}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


async def _count_until(bootstrap: str, topic: str, expected: int, started: float) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen = 0
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def _pipeline(bootstrap: str, settings: Settings, records: int, already: int) -> float:
    now = datetime.now(UTC)
    encoded = [
        encode(
            RawDelivery(
                delivery_id=f"bench-raw-{n}",
                connector_id="bench",
                platform=Platform.GENERIC,
                received_at=now,
                body=_body(1_000_000 + n),
                signature_verified=True,
            )
        )
        for n in range(records)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    counting = asyncio.create_task(
        _count_until(bootstrap, settings.topic("events"), already + records, started)
    )
    try:
        for n, value in enumerate(encoded):
            await producer.send(settings.topic("raw"), value, key=f"bench:case:{n % 500}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    return await counting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()

    base = load_settings()
    cluster = start_cluster(base, progress=lambda m: None)
    bootstrap = cluster.bootstrap_servers
    run = uuid.uuid4().hex[:6]
    settings = load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"bench-{run}",
        app_id=f"bench-{run}",
        replication_factor=min(3, cluster.size or 3),
    )
    asyncio.run(ensure_topics(bootstrap, topic_specs(settings)))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_APP_ID": f"bench-{run}",
        "DESKSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "DESKSTREAM_REPLICATION_FACTOR": str(settings.replication_factor),
        "DESKSTREAM_LOG_LEVEL": "warning",
        "DESKSTREAM_CONNECTORS__bench__PLATFORM": "generic",
        "DESKSTREAM_CONNECTORS__bench__SECRET": SECRET,
    }
    log = Path(base.state_dir, "logs", f"bench-{run}.log").absolute()
    with run_worker(env, port=free_port(), log=log) as worker:
        elapsed, latencies = asyncio.run(_ingest(worker.url, args.deliveries, args.concurrency))
        pipeline = asyncio.run(_pipeline(bootstrap, settings, args.records, args.deliveries))

    rate = args.deliveries / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    events_rate = args.records / pipeline
    print(f"kafka {bootstrap}, one worker, {os.cpu_count()} cores shared with load and broker")
    print(row("measure", "figure", "target", "ratio"))
    print(
        row(
            "webhook ingest, deliveries/s",
            f"{rate:.0f}",
            TARGET_INGEST_PER_S,
            rate / TARGET_INGEST_PER_S,
        )
    )
    print(row("acknowledge latency p50, ms", f"{p50:.1f}", "", None))
    print(
        row("acknowledge latency p99, ms", f"{p99:.1f}", TARGET_ACK_P99_MS, TARGET_ACK_P99_MS / p99)
    )
    print(
        row(
            "normalize, canonical events/s",
            f"{events_rate:.0f}",
            TARGET_PIPELINE_PER_S,
            events_rate / TARGET_PIPELINE_PER_S,
        )
    )
    print("(ratio > 1 meets the target; the p99 ratio is target/figure)")


if __name__ == "__main__":
    main()
