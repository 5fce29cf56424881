"""A replay of canonical events through normalize and sync, sinks in dry-run, with 1 and then
2 worker processes in one group: the wall time to the last sync decision (issue 11).

    DESKSTREAM_STATE_DIR=/tmp/r1m-state DESKSTREAM_KAFKA_PORT_BASE=27892 \\
        .venv/bin/python -m bench.replay_pipeline [--events 1000000] [--workers 1 2] \\
        [--from raw|sync] [--keep DIR]

Starts (or reuses) the local Kafka stack the settings name. For each worker count: a sync
rehearsal (``app.rehearsal.sync_stack``: private topics, the workers in one consumer group,
``DESKSTREAM_SINK_DRY_RUN``), then the history of ``bench.replay_traffic`` (Intercom
conversations opened, answered, escalated to Zendesk one in four, closed: ``--events``
canonical events) written onto its raw topic, as a replay of raw deliveries would be. The
workers normalise it (raw → events, sync) and the sync stage decides every event (audit
topic); the escalations' commands go to the dry-run sinks.

Figures: the wall time from the first raw record written to the last sync decision (the
decision's own time), events per second over it, the time the raw load took, and the
2-worker/1-worker ratio of the wall times. With ``--from sync`` the sync stage is measured
alone: this process works out what normalize would write onto the sync topic (the same
normaliser, re-homing, encoding and dedupe: ``bench.replay_traffic.sync_records``) before the
clock starts and writes that, so the workers' CPU is the sync stage's and the sinks'.

Every canonical event must have its decision on the audit topic (counted once by event id)
and no command may be written twice; the run says how many are missing otherwise, and how
many rewinds the workers made
(``deskstream_rewinds_total``) and how many records a seek back brought a second time. With
``--keep DIR`` the workers' logs stay there (``DESKSTREAM_LOG_LEVEL=info`` for the details).
The broker and this process share the machine's cores with the workers: the figures are lower
bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka_local.stack import start_cluster
from app.rehearsal import SyncStack, sync_stack
from app.settings import Settings, load_settings
from bench.proc_stat import cpu_seconds
from bench.replay_tally import Tally
from bench.replay_traffic import CONNECTOR, conversations_for, deliveries, events_of, sync_records
from bench.sync_common import batch_totals, counter, read_topic
from connectors.base.settings import ConnectorSettings
from connectors.intercom.normalize import IntercomNormaliser
from schemas.codec import encode
from schemas.errors import DeskstreamError
from streams.config import load_sync_config

PARTITIONS = 4
QUIET_S = 5.0  # the audit topic unchanged this long, every input read: the run is over
REWINDS = "deskstream_rewinds_total"


@dataclass(frozen=True, slots=True)
class Replay:
    #: the topic the history was written onto: "raw" (normalize and sync) or "sync"
    start: str
    workers: int
    events: int
    load_s: float
    #: seconds from the first raw record written to the first and to the last sync decision
    first_s: float
    wall_s: float
    worker_cpu_s: float
    tally: Tally
    #: the workers' rewinds (``deskstream_rewinds_total``): started, and records a seek back
    #: brought a second time, dropped (before they were, sinks ran those commands again)
    rewinds: int = 0
    redelivered: int = 0
    #: mean records per batch of normalize and of sync over the run (the workers start empty)
    fills: dict[str, float] = field(default_factory=dict)


def _history(stack: SyncStack, start: str, conversations: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of the records to write onto ``start``'s topic. For ``sync``: the
    rehearsal worker's Intercom connector (its service account is the stack's bot admin) and
    the rules file the worker reads, so the records are the ones its normalize would write."""
    raw = deliveries(conversations)
    if start == "raw":
        return ((record.key, encode(record.delivery)) for record in raw)
    normaliser = IntercomNormaliser(
        connector_id=CONNECTOR,
        settings=ConnectorSettings(platform="intercom", service_account_id=stack.bot_admin_id),
    )
    rules = load_sync_config(stack.rules_path)
    return ((record.key, record.value) for record in sync_records(raw, normaliser, rules))


async def _load(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    sent = 0
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _end_offsets(bootstrap: str, parts: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


async def _ends(admin: AIOKafkaAdminClient, settings: Settings, bootstrap: str) -> bool:
    """True once the workers' group has committed the end of raw and sync (a partition with
    nothing on it has nothing to commit)."""
    parts = [
        TopicPartition(settings.topic(t), p) for t in ("raw", "sync") for p in range(PARTITIONS)
    ]
    ends = await _end_offsets(bootstrap, parts)
    committed = await admin.list_consumer_group_offsets(settings.app_id)
    return all(
        ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in parts
    )


async def _settled(settings: Settings, bootstrap: str, within: float) -> None:
    """Wait until every raw and sync record is committed and the audit topic is quiet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + within
        audit_parts = [TopicPartition(settings.topic("audit"), p) for p in range(PARTITIONS)]
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            audit = sum((await _end_offsets(bootstrap, audit_parts)).values())
            if audit != last:
                last, quiet_since = audit, time.monotonic()
                continue
            if time.monotonic() - quiet_since >= QUIET_S and await _ends(
                admin, settings, bootstrap
            ):
                return
        raise DeskstreamError(
            f"the replay did not settle within {within:.0f} s; raise --timeout or lower --events"
        )
    finally:
        await admin.close()


async def replay(
    bootstrap: str, folder: Path, start: str, workers: int, events: int, within: float
) -> Replay:
    conversations = conversations_for(events)
    expected = sum(events_of(n) for n in range(conversations))
    # the workers log at DESKSTREAM_LOG_LEVEL (warning unless set: `info` adds what an
    # investigation needs: rewinds completed, revocations and their commits, re-sent outputs)
    env = {
        "DESKSTREAM_SINK_DRY_RUN": "true",
        "DESKSTREAM_LOG_LEVEL": os.environ.get("DESKSTREAM_LOG_LEVEL", "warning"),
    }
    async with sync_stack(
        bootstrap,
        folder,
        partitions=PARTITIONS,
        name="bench-replay",
        extra_env=env,
        workers=workers,
    ) as stack:
        settings = stack.settings
        pids = [w.process.pid for w in stack.workers]
        # worked out before the clock starts: the history is the input, not the run
        history = list(_history(stack, start, conversations))
        cpu = sum(cpu_seconds(pid) for pid in pids)
        started = time.time()
        await _load(bootstrap, settings.topic(start), history)
        load_s = time.time() - started
        await _settled(settings, bootstrap, within)
        worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
        rewinds = redelivered = 0.0
        for worker in stack.workers:
            rewinds += await counter(worker.url, REWINDS, event="started")
            redelivered += await counter(worker.url, REWINDS, event="redelivery_dropped")
        fills: dict[str, float] = {}
        for agent in ("normalize", "sync"):
            records, batches = await batch_totals([w.url for w in stack.workers], agent)
            if batches:  # none for normalize when the history starts on the sync topic
                fills[agent] = records / batches
    tally = Tally()
    await read_topic(settings, settings.topic("audit"), lambda value, _: tally.add(value))
    if tally.last is None:
        raise DeskstreamError("no sync decision on the audit topic; read the worker logs")
    assert tally.first is not None
    return Replay(
        start,
        workers,
        expected,
        load_s,
        tally.first.timestamp() - started,
        tally.last.timestamp() - started,
        worker_cpu,
        tally,
        int(rewinds),
        int(redelivered),
        fills,
    )


def _fill(run: Replay, agent: str) -> str:
    fill = run.fills.get(agent)
    return "none" if fill is None else f"{fill:.0f}"


def report(runs: list[Replay]) -> list[str]:
    """A column per run: the figures, then the accounting (every event decided, no command
    written twice), then the wall-time ratio of 2 workers to 1."""

    def line(name: str, cells: list[str]) -> str:
        return f"{name:36}" + "".join(f"{cell:>16}" for cell in cells)

    def cells(figure: Callable[[Replay], str]) -> list[str]:
        return [figure(run) for run in runs]

    stages = "the sync stage alone" if runs[0].start == "sync" else "normalize and sync"
    loaded = "sync records" if runs[0].start == "sync" else "raw deliveries"
    lines = [
        f"replay through {stages}, sinks in dry-run, {PARTITIONS} partitions, "
        f"{os.cpu_count()} cores shared with the broker and this process",
        line("measure", [f"{run.workers} worker(s)" for run in runs]),
        line("canonical events", cells(lambda r: f"{r.events:,}")),
        line(f"{loaded} loaded in, s", cells(lambda r: f"{r.load_s:.1f}")),
        line("first sync decision after, s", cells(lambda r: f"{r.first_s:.1f}")),
        line("wall time to last decision, s", cells(lambda r: f"{r.wall_s:.1f}")),
        line("events/s over the wall time", cells(lambda r: f"{r.events / r.wall_s:,.0f}")),
        line("workers' CPU, s", cells(lambda r: f"{r.worker_cpu_s:.1f}")),
        line("events per worker CPU-second", cells(lambda r: f"{r.events / r.worker_cpu_s:.0f}")),
        line(
            "records per batch, normalize / sync",
            cells(lambda r: " / ".join(_fill(r, agent) for agent in ("normalize", "sync"))),
        ),
        line(
            "events decided / missing",
            cells(lambda r: f"{len(r.tally.decided):,} / {r.tally.missing(r.events)}"),
        ),
        line(
            "commands written / repeated",
            cells(lambda r: f"{len(r.tally.writes):,} / {r.tally.repeated_writes}"),
        ),
        line(
            "rewinds / records seen twice, dropped",
            cells(lambda r: f"{r.rewinds} / {r.redelivered}"),
        ),
    ]
    by = {run.workers: run for run in runs}
    if 1 in by and 2 in by:
        ratio = by[2].wall_s / by[1].wall_s
        lines.append(line("wall time, 2 workers / 1 worker", [f"{ratio:.2f}"]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    parser.add_argument(
        "--from",
        dest="start",
        choices=["raw", "sync"],
        default="raw",
        help="raw: normalize and sync; sync: the sync stage alone",
    )
    parser.add_argument("--keep", type=Path, help="keep the workers' logs in this folder")
    args = parser.parse_args()
    os.environ.setdefault("DESKSTREAM_LOG_LEVEL", "warning")
    cluster = start_cluster(load_settings(), progress=lambda m: None)
    runs = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as scratch:
            # the workers' logs and state: kept under --keep, else gone with the run
            folder = args.keep / f"{workers}-workers" if args.keep else Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            runs.append(
                asyncio.run(
                    replay(
                        cluster.bootstrap_servers,
                        folder,
                        args.start,
                        workers,
                        args.events,
                        args.timeout,
                    )
                )
            )
        print("\n".join(report(runs[-1:])), flush=True)
    print("\n".join(report(runs)))
    missing = {run.workers: run.tally.missing(run.events) for run in runs}
    if any(missing.values()):
        raise SystemExit(
            f"events without a sync decision, by worker count: {missing}; every input must be "
            "accounted for: rerun with --keep DIR and read the workers' logs there"
        )


if __name__ == "__main__":
    main()
