"""Replay throughput: ``deskstream replay`` to a topic and to Parquet, against a plain
aiokafka read of the same range in the same run.

    .venv/bin/python -m bench.replay [--events 50000] [--partitions 4]

Starts (or reuses) the local Kafka stack (or ``KAFKA_BOOTSTRAP_SERVERS``), writes ``--events``
canonical events spread over three days to a private topic, then times, over the middle two
days:

1. a bare aiokafka consumer reading the range (assigned partitions, no decoding): the ceiling;
2. ``deskstream replay --out-topic`` (no filter: records copied as they are);
3. ``deskstream replay --out-topic`` with a filter (every record decoded to decide);
4. ``deskstream replay --out`` (decoded, flattened, written as Parquet with zstd).

Each figure is events read per second of wall time and its ratio to the bare read. The
replays run in this process with progress output off; the broker shares the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.kafka_local.stack import start_cluster
from app.replay.parquet import CHECKPOINT_NAME
from app.replay.run import run_replay
from app.replay.source import plan_spans
from app.settings import Settings, load_settings
from bench.figures import row
from schemas.codec import encode
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    Contact,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Source,
)
from streams.normalize import event_key
from streams.replay import ReplayFilter, ReplayJob

DAY_MS = 24 * 60 * 60 * 1000
T0_MS = 1_795_000_000_000
_KINDS = (EntityType.CASE, EntityType.MESSAGE, EntityType.CONTACT)


def _events(count: int) -> list[tuple[bytes, bytes, int]]:
    """(key, value, timestamp) of ``count`` canonical events over three days."""
    now = datetime(2026, 11, 18, tzinfo=UTC)
    agent = Actor(kind=ActorKind.AGENT, id="7", email="agent@example.com", name="Agent")
    out = []
    for n in range(count):
        kind = _KINDS[n % len(_KINDS)]
        data: Case | Message | Contact
        if kind is EntityType.CASE:
            data = Case(subject=f"Ticket {n}", status=CaseStatus.OPEN, tags=["billing", "vip"])
        elif kind is EntityType.MESSAGE:
            data = Message(
                case_id=f"c{n % 997}", author=agent, body_text="Thanks, looking into it " * 4,
                public=True, created_at=now,
            )  # fmt: skip
        else:
            data = Contact(emails=[f"p{n % 991}@example.com"], name="A Person", plan="pro")
        event = Envelope(
            event_id=f"bench-{n}",
            source=Source(
                platform=(Platform.ZENDESK, Platform.INTERCOM)[n % 2],
                connector_id="bench",
                entity_type=kind,
                entity_id=f"e{n % 997}",
                event_type="updated",
                actor=agent,
                occurred_at=now,
            ),
            op=Op.UPDATE,
            changed_fields=["status"],
            data=data,
            link_id=f"lnk_{n % 499}",
            ingested_at=now,
        )
        out.append((event_key(event).encode(), encode(event), T0_MS + n * 3 * DAY_MS // count))
    return out


async def _setup(bootstrap: str, topic: str, partitions: int, events: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        sends = [
            await producer.send(topic, value, key=key, timestamp_ms=ts)
            for key, value, ts in _events(events)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _bare_read(
    bootstrap: str, topic: str, partitions: int, lo: int, hi: int
) -> tuple[int, float]:
    """A plain consumer over the same range: records counted, nothing decoded."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        started = time.perf_counter()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        spans = await plan_spans(consumer, tps, lo, hi)
        open_tps = {TopicPartition(topic, p): s.end for p, s in spans.items() if s.remaining}
        consumer.assign(list(open_tps))
        for tp in open_tps:
            consumer.seek(tp, spans[tp.partition].start)
        count = 0
        while open_tps:
            batch = await consumer.getmany(*open_tps, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                count += sum(1 for r in records if r.offset < open_tps.get(tp, 0))
            for tp in list(open_tps):
                if await consumer.position(tp) >= open_tps[tp]:
                    del open_tps[tp]
        return count, time.perf_counter() - started
    finally:
        await consumer.stop()


async def _replay(settings: Settings, job: ReplayJob, checkpoint: Path) -> tuple[int, float]:
    started = time.perf_counter()
    result = await run_replay(
        settings, job, checkpoint_path=checkpoint, progress_stream=io.StringIO()
    )
    c = result.checkpoint
    return c.written + c.filtered, time.perf_counter() - started


async def _delete(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    cluster = start_cluster(load_settings(), progress=lambda m: None)
    bootstrap = cluster.bootstrap_servers
    run = uuid.uuid4().hex[:6]
    source = f"bench-replay-{run}.events"
    settings = load_settings(kafka_bootstrap_servers=bootstrap, partitions=args.partitions)
    lo, hi = T0_MS + DAY_MS, T0_MS + 2 * DAY_MS + DAY_MS // 2
    targets = [f"bench-replay-{run}.copy", f"bench-replay-{run}.filtered"]
    asyncio.run(_setup(bootstrap, source, args.partitions, args.events))
    try:
        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder)

            def job(output: str, target: str, **criteria: list[str]) -> ReplayJob:
                return ReplayJob(source, lo, hi, ReplayFilter.of(**criteria), output, target)

            bare = asyncio.run(_bare_read(bootstrap, source, args.partitions, lo, hi))
            copy = asyncio.run(_replay(settings, job("topic", targets[0]), base / "copy.json"))
            filtered = asyncio.run(
                _replay(
                    settings,
                    job("topic", targets[1], platforms=["intercom"]),
                    base / "filtered.json",
                )
            )
            out = base / "out"
            parquet = asyncio.run(
                _replay(settings, job("parquet", str(out)), out / CHECKPOINT_NAME)
            )
            size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    finally:
        asyncio.run(_delete(bootstrap, [source, *targets]))

    rate = bare[0] / bare[1]
    print(
        f"kafka {bootstrap}, {args.events:,} events in {args.partitions} partitions, "
        f"{bare[0]:,} in the range; {os.cpu_count()} cores shared with the broker"
    )
    print(row("measure", "figure", "vs bare", "ratio"))
    print(row("bare aiokafka read, events/s", f"{rate:,.0f}", "", None))
    for name, (count, seconds) in (
        ("replay to a topic, events/s", copy),
        ("replay to a topic, filtered", filtered),
        ("replay to Parquet, events/s", parquet),
    ):
        assert count == bare[0], f"{name}: read {count}, the range has {bare[0]}"
        figure = count / seconds
        print(row(name, f"{figure:,.0f}", f"{rate:,.0f}", figure / rate))
    print(f"Parquet written: {size / 1e6:.1f} MB ({size / bare[0]:.0f} bytes per event, zstd)")
    print("(ratio = replay rate / bare read rate in this run)")


if __name__ == "__main__":
    main()
