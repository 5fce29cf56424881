"""Webhook ingest and normalize throughput of one worker, against issue 11's targets, with a
bare aiokafka consume→produce loop measured in the same run.

    .venv/bin/python -m bench.ingest_pipeline [--records 30000] [--deliveries 10000]
                                              [--concurrency 64] [--profile DIR] [--chat-desk]

Starts (or reuses) the local Kafka stack (or ``KAFKA_BOOTSTRAP_SERVERS``), creates a private
set of topics, then:

1. normalize: ``--records`` RawDelivery records are written to the raw topic before the
   worker starts, so the worker reads a backlog with nothing else running. Figures: canonical
   events/s (by the events' own timestamps, first to last) and the worker's CPU per event.
2. ingest: signed generic webhooks posted over ``--concurrency`` keep-alive connections;
   each answer waits for Kafka's acks=all. Figures: verified deliveries/s, acknowledge
   latency p50/p99 (at saturation mostly queueing), the worker's CPU per delivery and the
   share of the burst normalize had turned into events by its end (that normalising is in
   the burst's CPU, the rest comes after it); then 10 s
   of deliveries started at a steady ``--paced-rate`` (open loop, as platforms send) once the
   worker has normalised the burst: their p50/p99 as sent (this process's own delays on the
   shared cores count), and the share the worker acknowledged within 25 ms by its own
   ``deskstream_webhook_ack_seconds`` histogram (at least 99 %: p99 under 25 ms); then 10 s
   more at ``--busy-share`` (0.8) of the burst's own rate, the same figures plus the worker's
   event-loop lag and the CPU of worker, sender and broker: the acknowledge latency at a
   steady rate near the burst's, where the burst's p99 is mostly its queue (64 connections
   at a rate R wait about 64 / R each). The burst's rate is not a sustained one (the worker
   normalises part of it afterwards): on two shared cores 0.8 of it already spends the
   worker's CPU (docs/performance.md, "Sustained load"). Then the
   worker's garbage-collector pauses from its start-up (once its heap is frozen) to the
   run's end (``deskstream_gc_pause_seconds``): each one stops every answer in flight.
   Last, the worker's CPU over ``IDLE_SECONDS`` with no traffic at all (its fetches,
   heartbeats and timers: what a quiet cluster costs).
3. the bare loop (``bench.bare_kafka``), once the worker has stopped: the same raw records
   read and written again by plain aiokafka, one output each. The normalize figure is
   compared with it (issue 11: at least a quarter of it). Then a bare producer's acks=all
   round trip, one record at a time: the least any ingest answer waits. Then the bare
   acceptor (``bench.bare_ingest``: aiohttp, the signature check and an acks=all send, in
   a process of its own) takes the same burst as the worker: the least answering a webhook
   costs on this stack, against the worker's CPU per delivery less the normalising it did
   within the burst (at normalize's own CPU per event).
4. normalize's own work without Kafka (``bench.normalize_work``: decode, normalise, encode,
   in this process), and from it the most normalize / bare loop could reach if Faust read
   and wrote at the bare loop's own cost: bare CPU per record / (that + the work).

``--profile DIR`` samples the worker with py-spy during phases 1 and 2 and the busy paced
phase (``DIR/normalize.txt``, ``DIR/ingest.txt``, ``DIR/busy.txt``; summarise with
``python -m bench.profile_table``).
``--chat-desk`` configures a live chat desk as well (Zendesk Conversations, never called: the
benchmark's events are no chat's), so the worker's chat relay reads every canonical event
normalize writes, as in a deployment with live chat. The relay may lag behind normalize, so
its cost shows in a row of its own: the worker's CPU per event from the first one normalize
wrote until the relay had read them all (Faust's per-topic counter on the worker's
``/metrics``).
The load generator and the broker share this machine's cores with the worker: the figures are
lower bounds of what a worker does on its own cores.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.kafka_local.stack import start_cluster
from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import TopicSpec, topic_specs
from app.worker_process import free_port, run_worker
from bench.bare_ingest import BareAcceptor
from bench.bare_kafka import LoopFigures, bare_acks, bare_loop
from bench.broker_age import cold_broker_warning
from bench.figures import at_least, at_most, percentile, row
from bench.generic_records import CONNECTOR, generic_body, raw_record
from bench.http_load import Pool, post_request
from bench.normalize_work import WorkFigures, normalize_work, work_rows
from bench.proc_stat import cpu_seconds
from bench.profiling import py_spy
from bench.sync_common import counter
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

TARGET_INGEST_PER_S = 5000
TARGET_ACK_P99_MS = 25
TARGET_NORMALIZE_PER_S = 10_000
TARGET_SHARE_OF_BARE = 0.25
#: connections the busy paced phase may open (a delivery waits for one only beyond them)
BUSY_CONNECTIONS = 512
#: how long the worker is watched with no traffic at all, after the paced deliveries
IDLE_SECONDS = 10.0
#: raw records normalize's own work is timed on, in this process (bench.normalize_work)
WORK_RECORDS = 5000
SECRET = "bench-secret"
#: the live chat desk ``--chat-desk`` configures
CHAT_DESK = "bench_desk"


@dataclass(frozen=True, slots=True)
class BurstFigures:
    per_s: float
    p50_ms: float
    p99_ms: float
    #: the server process's CPU per delivery
    cpu_us_per_delivery: float


@dataclass(frozen=True, slots=True)
class IngestFigures:
    #: the CPU per delivery includes normalising what the worker ingests within the burst
    burst: BurstFigures
    #: canonical events normalize wrote while the burst ran, per delivery: the share of the
    #: burst's normalising done inside it (and in its CPU per delivery), not after it
    normalized_within: float


@dataclass(frozen=True, slots=True)
class NormalizeFigures:
    per_s: float
    cpu_us_per_event: float
    #: with a chat desk (``--chat-desk``): the worker's CPU per event from the first one seen
    #: until its chat relay had read every event (it may lag behind normalize)
    with_relay_cpu_us_per_event: float | None = None


async def _fill_raw(bootstrap: str, topic: str, records: int) -> None:
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for n in range(records):
            key, value = raw_record(n, now)
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _normalized(
    bootstrap: str, topic: str, expected: int, pid: int, *, relay_url: str | None = None
) -> NormalizeFigures:
    """Reads the events topic until ``expected`` events are there: their rate by their own
    timestamps, and the worker's CPU per event from the first one seen to the last; with
    ``relay_url`` (a worker running the chat relay), also until its relay read them all."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    stamps: list[int] = []
    cpu_at_first = 0.0
    seen_at_first = 0
    try:
        while len(stamps) < expected:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            if batch and not stamps:
                cpu_at_first = cpu_seconds(pid)
                seen_at_first = sum(len(records) for records in batch.values())
            stamps += [record.timestamp for records in batch.values() for record in records]
        cpu = cpu_seconds(pid) - cpu_at_first
    finally:
        await consumer.stop()
    with_relay = None
    if relay_url is not None:
        # Records of the events topic the worker has read: its chat relay is their one reader.
        received = "faust_messages_received_per_topic_total"
        while await counter(relay_url, received, topic=topic) < expected:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # (polled: the counter is on the worker's /metrics)
        with_relay = cpu_seconds(pid) - cpu_at_first
    span_s = max(1, max(stamps) - min(stamps)) / 1000
    counted = max(1, len(stamps) - seen_at_first)
    return NormalizeFigures(
        per_s=(len(stamps) - 1) / span_s,
        cpu_us_per_event=1e6 * cpu / counted,
        with_relay_cpu_us_per_event=None if with_relay is None else 1e6 * with_relay / counted,
    )


def _signed(url: str, n: int) -> bytes:
    """Delivery ``n``, signed now, as the bytes of its request (built before the timing starts:
    the load generator shares the worker's cores)."""
    body = generic_body(n)
    ts = int(time.time())
    headers = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(SECRET, ts, body)}
    return post_request(urlsplit(url).netloc, f"/webhooks/{CONNECTOR}", body, headers)


def _pool(url: str, connections: int) -> Pool:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None  # the worker's URL names its port
    return Pool(parts.hostname, parts.port, connections)


def _stop(tasks: Sequence[asyncio.Future[Any]], pool: Pool) -> None:
    """A phase over, or failed: nothing of it left running (a failed delivery ends the run
    without sending the rest of its schedule)."""
    for task in tasks:
        task.cancel()
    pool.close()


async def _post(pool: Pool, request: bytes, n: int) -> float:
    """One signed delivery; the seconds until its answer (a 200: Kafka acknowledged it)."""
    started = time.perf_counter()
    status = await pool.send(request)
    if status != 200:
        raise RuntimeError(f"delivery {n}: {status}")
    return time.perf_counter() - started


async def _burst(url: str, deliveries: int, concurrency: int, pid: int) -> BurstFigures:
    """As fast as ``concurrency`` connections go (at saturation the latency is mostly queueing:
    about ``concurrency`` / rate): the worker's burst, and the bare acceptor's
    (``bench.bare_ingest``) with the same requests."""
    # bench.http_load rather than a general client: on two shared cores the load generator
    # must cost as little CPU as possible (docs/performance.md).
    latencies: list[float] = []
    requests = [_signed(url, n) for n in range(deliveries)]
    numbers = iter(range(deliveries))
    pool = _pool(url, concurrency)

    async def sender() -> None:
        for n in numbers:
            latencies.append(await _post(pool, requests[n], n))

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    senders = [asyncio.ensure_future(sender()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*senders)
    finally:
        _stop(senders, pool)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return BurstFigures(
        per_s=deliveries / elapsed,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        cpu_us_per_delivery=1e6 * cpu / deliveries,
    )


async def _ingest(url: str, deliveries: int, concurrency: int, pid: int) -> IngestFigures:
    """The worker's burst, and the share of it normalize turned into events meanwhile."""
    async with aiohttp.ClientSession() as session:
        normalized = await _normalized_so_far(session, url)
        burst = await _burst(url, deliveries, concurrency, pid)
        normalized = await _normalized_so_far(session, url) - normalized
    return IngestFigures(burst, normalized_within=normalized / deliveries)


async def _normalized_so_far(session: aiohttp.ClientSession, url: str) -> float:
    """Canonical events the worker's normalize has written (every platform)."""
    samples = await _samples(session, url, "deskstream_events_normalized_total")
    return sum(samples.values())


@dataclass(frozen=True, slots=True)
class PacedFigures:
    per_s: float
    #: as the sender saw them (this process shares the cores: its own delays count too)
    p50_ms: float
    p99_ms: float
    #: deliveries the worker acknowledged within the target, by its own ack histogram
    #: (``deskstream_webhook_ack_seconds``: from the body read to Kafka's acks=all)
    share_within_target: float
    #: the share of the worker's event-loop probes that woke more than the target late
    #: (``deskstream_event_loop_lag_seconds``, one every 50 ms): its loop held that long
    loop_late_share: float
    #: how late the probes woke on average: about the time the loop takes to run once
    #: through what is ready, which every step of every answer waits
    loop_lag_mean_ms: float
    #: CPU over the phase as a share of one core: the worker's (normalising included), this
    #: sending process's own, the local brokers' (None: brokers this run did not start)
    worker_cpu: float
    sender_cpu: float
    broker_cpu: float | None = None


async def _samples(session: aiohttp.ClientSession, url: str, prefix: str) -> dict[str, float]:
    """The worker's ``/metrics`` samples whose names start with ``prefix``, by their full
    names (labels included)."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def _histogram(
    session: aiohttp.ClientSession, url: str, series: str
) -> tuple[float, float, float]:
    """(observations within TARGET_ACK_P99_MS, all observations, their sum) of the worker's
    histogram ``series``, every label summed."""
    samples = await _samples(session, url, f"{series}_")
    bound = f'le="{TARGET_ACK_P99_MS / 1000}"'
    within = count = total = 0.0
    for name, value in samples.items():
        if name.startswith(f"{series}_bucket") and bound in name:
            within += value
        elif name.startswith(f"{series}_count"):
            count += value
        elif name.startswith(f"{series}_sum"):
            total += value
    return within, count, total


async def _worker_counts(session: aiohttp.ClientSession, url: str) -> tuple[float, ...]:
    """What ``_paced`` reads from the worker: its acks', then its loop probes' histogram."""
    acks = await _histogram(session, url, "deskstream_webhook_ack_seconds")
    lag = await _histogram(session, url, "deskstream_event_loop_lag_seconds")
    return (*acks, *lag)


async def _paced(
    url: str, rate: float, seconds: float, *, connections: int, pid: int, brokers: list[int]
) -> PacedFigures:
    """Deliveries started at a steady ``rate`` whatever the answers do (open loop, as
    platforms send): the acknowledge latency at that rate. A delivery started while all
    ``connections`` are busy waits for one here, and that wait counts."""
    total = int(rate * seconds)
    requests = [_signed(url, 2_000_000 + n) for n in range(total)]
    pool = _pool(url, connections)
    async with aiohttp.ClientSession() as session:
        before = await _worker_counts(session, url)
        started, cpu, own_cpu = time.perf_counter(), cpu_seconds(pid), time.process_time()
        broker_cpu = sum(cpu_seconds(broker) for broker in brokers)
        pending: list[asyncio.Future[float]] = []
        try:
            for n, request in enumerate(requests):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                pending.append(asyncio.ensure_future(_post(pool, request, 2_000_000 + n)))
            latencies = list(await asyncio.gather(*pending))
        finally:
            _stop(pending, pool)
        elapsed = time.perf_counter() - started
        cpu, own_cpu = cpu_seconds(pid) - cpu, time.process_time() - own_cpu
        broker_cpu = sum(cpu_seconds(broker) for broker in brokers) - broker_cpu
        after = await _worker_counts(session, url)
    grown = (b - a for a, b in zip(before, after, strict=True))
    within, count, _, on_time, probes, lag_s = grown
    return PacedFigures(
        per_s=total / elapsed,
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        share_within_target=within / max(1.0, count),
        loop_late_share=(probes - on_time) / max(1.0, probes),
        loop_lag_mean_ms=1000 * lag_s / max(1.0, probes),
        worker_cpu=cpu / elapsed,
        sender_cpu=own_cpu / elapsed,
        broker_cpu=broker_cpu / elapsed if brokers else None,
    )


@dataclass(frozen=True)
class GcFigures:
    """The worker's garbage-collector pauses from its start-up to the run's end
    (``app.gc_pauses``), its start-up's own collections left out."""

    full_collections: int
    full_ms: float
    #: pauses of any generation longer than the ack-latency target: each delays every answer
    over_target: int

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> GcFigures:
        def grown(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        series = "deskstream_gc_pause_seconds"
        within = f'le="{TARGET_ACK_P99_MS / 1000}"'
        over = sum(
            grown(f'{series}_count{{generation="{g}"}}')
            - grown(f'{series}_bucket{{generation="{g}",{within}}}')
            for g in range(3)
        )
        return cls(
            full_collections=int(grown(f'{series}_count{{generation="2"}}')),
            full_ms=1000 * grown(f'{series}_sum{{generation="2"}}'),
            over_target=int(over),
        )


async def _gc_series(url: str, *, frozen: bool = False) -> dict[str, float]:
    """The worker's ``deskstream_gc_*`` series, by their full names; with ``frozen``, once
    its start-up heap is frozen (the freeze's own full collection is start-up's)."""
    async with aiohttp.ClientSession() as session:
        while True:
            series = await _samples(session, url, "deskstream_gc_")
            if not frozen or series.get("deskstream_gc_frozen_objects", 0.0) > 0:
                return series
            await asyncio.sleep(0.05)


def _idle_cpu_share(pid: int, seconds: float) -> float:
    """The worker's CPU over ``seconds`` with nothing to read or answer, as a share of one
    core: what its fetches, heartbeats and timers cost a cluster that waits for traffic."""
    time.sleep(1.0)  # the paced phase's last records are read and acked by now
    started, cpu = time.perf_counter(), cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.perf_counter() - started)


def _paced_rows(paced: PacedFigures) -> list[tuple[str, str, object, float | None]]:
    p99 = TARGET_ACK_P99_MS
    rate = f"paced {paced.per_s:.0f}/s"
    return [
        (f"{rate}: ack p50, ms", f"{paced.p50_ms:.1f}", "", None),
        (f"{rate}: ack p99, ms", f"{paced.p99_ms:.1f}", p99, at_most(paced.p99_ms, p99)),
        (
            f"{rate}: % acked < {p99} ms",  # by the worker's own histogram
            f"{100 * paced.share_within_target:.1f}",
            99,
            at_least(paced.share_within_target, 0.99),
        ),
        (f"{rate}: loop lag mean, ms", f"{paced.loop_lag_mean_ms:.1f}", "", None),
        (f"{rate}: loop lag > {p99} ms, %", f"{100 * paced.loop_late_share:.1f}", "", None),
        (f"{rate}: worker CPU, %", f"{100 * paced.worker_cpu:.0f}", "", None),
        (f"{rate}: sender CPU, %", f"{100 * paced.sender_cpu:.0f}", "", None),
        (f"{rate}: broker CPU, %", _share(paced.broker_cpu), "", None),
    ]


def _share(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}"


def _bare_spec(settings: Settings) -> TopicSpec:
    events = next(s for s in topic_specs(settings) if s.logical == "events")
    return TopicSpec("bare", f"{settings.topic_prefix}.bare", events.partitions, events.replication)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30000)
    parser.add_argument("--deliveries", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paced-rate", type=float, default=500.0, help="deliveries/s, steady")
    parser.add_argument(
        "--busy-share",
        type=float,
        default=0.8,
        help="the busy paced phase's rate, as a share of the burst's deliveries/s",
    )
    parser.add_argument("--profile", type=Path, help="py-spy the worker into this folder")
    parser.add_argument(
        "--chat-desk",
        action="store_true",
        help="configure a live chat desk too: its relay reads every canonical event",
    )
    args = parser.parse_args()

    base = load_settings()
    cluster = start_cluster(base, progress=lambda m: None)
    bootstrap = cluster.bootstrap_servers
    cold = cold_broker_warning(cluster)  # its age when the measuring starts
    brokers = cluster.size or len(cluster.registered or {}) or 1
    broker_pids = [node.pid for node in cluster.nodes if node.pid is not None]
    run = uuid.uuid4().hex[:6]
    settings = load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"bench-{run}",
        app_id=f"bench-{run}",
        replication_factor=min(3, brokers),
    )
    asyncio.run(ensure_topics(bootstrap, [*topic_specs(settings), _bare_spec(settings)]))
    asyncio.run(_fill_raw(bootstrap, settings.topic("raw"), args.records))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_APP_ID": f"bench-{run}",
        "DESKSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "DESKSTREAM_REPLICATION_FACTOR": str(settings.replication_factor),
        "DESKSTREAM_LOG_LEVEL": "warning",
        f"DESKSTREAM_CONNECTORS__{CONNECTOR}__PLATFORM": "generic",
        f"DESKSTREAM_CONNECTORS__{CONNECTOR}__SECRET": SECRET,
    }
    if args.chat_desk:
        # A Zendesk Conversations desk (never called here: the benchmark's events are no
        # chat's), so the worker runs the chat relay over every canonical event it writes.
        env |= {
            f"DESKSTREAM_CONNECTORS__{CHAT_DESK}__PLATFORM": "zendesk_conversations",
            f"DESKSTREAM_CONNECTORS__{CHAT_DESK}__SECRET": SECRET,
            f"DESKSTREAM_CONNECTORS__{CHAT_DESK}__APP_ID": "bench-app",
        }
    profile = args.profile
    events = settings.topic("events")
    log = Path(base.state_dir, "logs", f"bench-{run}.log").absolute()
    with run_worker(env, port=free_port(), log=log) as worker:
        pid = worker.process.pid
        gc_started = asyncio.run(_gc_series(worker.url, frozen=True))
        with py_spy(pid, profile / "normalize.txt" if profile else None):
            relay_url = worker.url if args.chat_desk else None
            normalize = asyncio.run(
                _normalized(bootstrap, events, args.records, pid, relay_url=relay_url)
            )
        with py_spy(pid, profile / "ingest.txt" if profile else None):
            ingest = asyncio.run(_ingest(worker.url, args.deliveries, args.concurrency, pid))
        # The paced deliveries meet a worker done with the burst's normalising.
        asyncio.run(_normalized(bootstrap, events, args.records + args.deliveries, pid))
        paced_at = functools.partial(_paced, worker.url, pid=pid, brokers=broker_pids)
        paced = asyncio.run(paced_at(args.paced_rate, 10.0, connections=64))
        # Platforms open connections as they need them: the busy phase's are not the limit.
        busy_rate = args.busy_share * ingest.burst.per_s
        with py_spy(pid, profile / "busy.txt" if profile else None):
            busy = asyncio.run(paced_at(busy_rate, 10.0, connections=BUSY_CONNECTIONS))
        gc = GcFigures.between(gc_started, asyncio.run(_gc_series(worker.url)))
        idle = _idle_cpu_share(pid, IDLE_SECONDS)
    bare = asyncio.run(
        bare_loop(bootstrap, settings.topic("raw"), settings.topic("bare"), args.records)
    )
    acks = asyncio.run(bare_acks(bootstrap, settings.topic("bare")))
    with BareAcceptor(bootstrap, settings.topic("bare"), SECRET) as acceptor:
        floor = asyncio.run(_burst(acceptor.url, args.deliveries, args.concurrency, acceptor.pid))
    work = normalize_work(WORK_RECORDS)
    _report(bootstrap, ingest, floor, [paced, busy], acks, normalize, bare, work, gc, idle)
    if cold:
        print(cold)


def _report(
    bootstrap: str,
    ingest: IngestFigures,
    floor: BurstFigures,
    paced: list[PacedFigures],
    acks: tuple[float, float],
    normalize: NormalizeFigures,
    bare: LoopFigures,
    work: WorkFigures,
    gc: GcFigures,
    idle: float,
) -> None:
    share = normalize.per_s / bare.records_per_s
    # Reading and writing through Faust at no more than the bare loop's own cost, plus the
    # work: the most normalize / bare loop could reach on this machine.
    best_share = bare.cpu_us_per_record / (bare.cpu_us_per_record + work.total_us)
    p99 = TARGET_ACK_P99_MS
    # (measure, figure, target, ratio): None for figures without a target of their own
    rows: list[tuple[str, str, object, float | None]] = [
        *_burst_rows(ingest, floor, normalize),
        *(line for phase in paced for line in _paced_rows(phase)),
        ("worker GC: full collections after start-up", f"{gc.full_collections}", "", None),
        ("worker GC: full collections, ms in all", f"{gc.full_ms:.1f}", "", None),
        (f"worker GC: pauses > {p99} ms", f"{gc.over_target}", "", None),
        ("worker CPU with no traffic, % of a core", f"{100 * idle:.2f}", "", None),
        ("bare producer acks=all p50, ms", f"{acks[0]:.1f}", "", None),
        ("bare producer acks=all p99, ms", f"{acks[1]:.1f}", "", None),
        (
            "normalize, canonical events/s",
            f"{normalize.per_s:.0f}",
            TARGET_NORMALIZE_PER_S,
            at_least(normalize.per_s, TARGET_NORMALIZE_PER_S),
        ),
        ("normalize, worker CPU us/event", f"{normalize.cpu_us_per_event:.0f}", "", None),
        *(
            [("normalize and the chat relay, CPU us/event", f"{with_relay:.0f}", "", None)]
            if (with_relay := normalize.with_relay_cpu_us_per_event) is not None
            else []
        ),
        ("bare aiokafka loop, records/s", f"{bare.records_per_s:.0f}", "", None),
        ("bare aiokafka loop, CPU us/record", f"{bare.cpu_us_per_record:.0f}", "", None),
        (
            "normalize / bare loop",
            f"{share:.3f}",
            TARGET_SHARE_OF_BARE,
            at_least(share, TARGET_SHARE_OF_BARE),
        ),
        *((measure, figure, "", None) for measure, figure in work_rows(work)),
        (
            "normalize / bare loop, Faust free",
            f"{best_share:.3f}",
            TARGET_SHARE_OF_BARE,
            at_least(best_share, TARGET_SHARE_OF_BARE),
        ),
    ]
    print(f"kafka {bootstrap}, one worker, {os.cpu_count()} cores shared with load and broker")
    print(row("measure", "figure", "target", "ratio"))
    for measure, figure, target, ratio in rows:
        print(row(measure, figure, target, ratio))
    print("(ratio > 1 meets the target; for latencies it is target/figure)")


def _burst_rows(
    ingest: IngestFigures, floor: BurstFigures, normalize: NormalizeFigures
) -> list[tuple[str, str, object, float | None]]:
    """The burst's rows, the bare acceptor's beside them (``bench.pipeline``'s summary shows
    those with a target, and those whose name starts with "bare ")."""
    burst = ingest.burst
    p99 = TARGET_ACK_P99_MS
    # The burst's CPU less the normalising done within it, at normalize's own (backlog) cost
    # per event: the floor's, and everything the worker adds to it (bench.bare_ingest).
    answering = burst.cpu_us_per_delivery - ingest.normalized_within * normalize.cpu_us_per_event
    return [
        (
            "webhook ingest, deliveries/s",
            f"{burst.per_s:.0f}",
            TARGET_INGEST_PER_S,
            at_least(burst.per_s, TARGET_INGEST_PER_S),
        ),
        ("ingest, worker CPU us/delivery", f"{burst.cpu_us_per_delivery:.0f}", "", None),
        ("ingest CPU less normalising, us", f"{answering:.0f}", "", None),
        (
            "ingest: normalised within the burst, %",
            f"{100 * ingest.normalized_within:.0f}",
            "",
            None,
        ),
        ("acknowledge latency p50, ms", f"{burst.p50_ms:.1f}", "", None),
        ("acknowledge latency p99, ms", f"{burst.p99_ms:.1f}", p99, at_most(burst.p99_ms, p99)),
        ("bare acceptor, deliveries/s", f"{floor.per_s:.0f}", "", None),
        ("bare acceptor, CPU us/delivery", f"{floor.cpu_us_per_delivery:.0f}", "", None),
        ("bare acceptor, ack p99, ms", f"{floor.p99_ms:.1f}", "", None),
        (
            "bare acceptor: ingest CPU over it",
            f"{answering / floor.cpu_us_per_delivery:.2f}",
            "",
            None,
        ),
    ]


if __name__ == "__main__":
    main()
