"""``bench.sync_pipeline --dry-run``: the sync stage's own cost on one worker, with the sinks
in their dry-run mode (``DESKSTREAM_SINK_DRY_RUN``: everything but the platform call).

The same five human changes per customer as the live benchmark (two messages and a tag in
Intercom, a reply and a solve in Zendesk), written as the canonical events normalize would
write (``<prefix>.sync``, keyed by link) rather than through the platforms: the people's
Zendesk changes need the ticket the dry-run sink only pretends to create (its id comes back
in the audit record, as in the live run), and webhook ingest and normalize are not the sync
stage. No echoes come back either (nothing reached a platform), so every sync event here is
a human change: a conservative count (an echo costs the stage less than a change).

Figures: sync events per worker CPU-second (busy CPU: the worker's idle rate subtracted), the
inputs (events and write results) per CPU-second, CPU per event; ``--profile`` samples the
worker with py-spy while the events flow and prints its CPU split by component.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from app.rehearsal import HUMAN_ADMIN, SyncStack, sync_stack
from bench.cpu_split import profile, split
from bench.cpu_split import report as split_report
from bench.figures import at_least, percentile, row
from bench.proc_stat import cpu_seconds
from bench.sync_common import (
    AuditFollower,
    all_done,
    batch_totals,
    counter,
    events_only,
    read_topic,
)
from connectors.base.links import case_link_id
from schemas.codec import encode
from schemas.models import (
    Actor,
    ActorKind,
    AuditRecord,
    Case,
    CaseStatus,
    EntityData,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Priority,
    Source,
)

__all__ = ["TARGET_EVENTS_PER_CPU_S", "run_dry"]

TARGET_EVENTS_PER_CPU_S = 2500.0
HUMAN_CHANGES = 6  # per customer: created, 2 messages, tagged; a reply and a solve on the ticket
AGENT = Actor(kind=ActorKind.AGENT, id="zd-agent-1", name="Sam Agent")
ADMIN = Actor(kind=ActorKind.AGENT, id=HUMAN_ADMIN, name="Ada Agent")
_ids = itertools.count(1)


@dataclass
class DryRun:
    args: argparse.Namespace
    sync: list[tuple[Envelope, int]] = field(default_factory=list)
    audits: list[AuditRecord] = field(default_factory=list)
    writes: int = 0
    drive_s: float = 0.0
    worker_cpu_s: float = 0.0
    busy_cpu_s: float = 0.0
    idle_cpu: float = 0.0
    split: Counter[str] = field(default_factory=Counter)
    #: (records, batches) the sync agent took over the drive, all workers
    batch_fill: tuple[float, float] = (0.0, 0.0)
    #: with several workers, per worker: (sync records it read, its busy CPU seconds)
    per_worker: list[tuple[float, float]] = field(default_factory=list)


class Customer:
    """One customer's conversation and, once the sync made it, its ticket: their events."""

    def __init__(self, n: int) -> None:
        self.conversation = str(90_000_000 + n)
        self.link = case_link_id("intercom", "intercom", self.conversation)
        self.person = Actor(
            kind=ActorKind.CUSTOMER, id=f"c-{n}", email=f"dry-{n}@example.com", name=f"C {n}"
        )
        self.tags: list[str] = []

    def _event(
        self,
        platform: Platform,
        entity_type: EntityType,
        entity_id: str,
        data: EntityData,
        actor: Actor,
        *,
        op: Op = Op.UPDATE,
        changed: list[str] | None = None,
    ) -> Envelope:
        now = datetime.now(UTC)
        n = next(_ids)
        return Envelope(
            event_id=f"dry-run-evt-{os.getpid()}-{n}",
            source=Source(
                platform=platform,
                connector_id=platform.value,
                entity_type=entity_type,
                entity_id=entity_id,
                event_type="bench",
                source_event_id=f"src-{n}",
                actor=actor,
                occurred_at=now,
            ),
            op=op,
            changed_fields=changed or [],
            data=data,
            link_id=self.link,
            ingested_at=now,
        )

    def conversation_event(self, actor: Actor, *, op: Op, changed: list[str]) -> Envelope:
        case = Case(
            subject=f"Order {self.conversation} never arrived",
            status=CaseStatus.OPEN,
            priority=Priority.NORMAL,
            tags=self.tags,
            requester=self.person,
        )
        return self._event(
            Platform.INTERCOM, EntityType.CASE, self.conversation, case, actor, op=op,
            changed=changed,
        )  # fmt: skip

    def message(self, part: int, text: str) -> Envelope:
        message = Message(
            case_id=self.conversation,
            author=self.person,
            body_text=text,
            public=True,
            created_at=datetime.now(UTC),
        )
        part_id = f"{self.conversation}{part:02d}"
        return self._event(Platform.INTERCOM, EntityType.MESSAGE, part_id, message, self.person)

    def reply(self, ticket: str, text: str) -> Envelope:
        message = Message(
            case_id=ticket, author=AGENT, body_text=text, public=True, created_at=datetime.now(UTC)
        )
        comment = f"{ticket}-c{next(_ids)}"
        return self._event(Platform.ZENDESK, EntityType.MESSAGE, comment, message, AGENT)

    def ticket(self, ticket: str, status: CaseStatus) -> Envelope:
        case = Case(
            subject=f"Order {self.conversation} never arrived",
            status=status,
            priority=Priority.NORMAL,
            requester=self.person,
        )
        return self._event(
            Platform.ZENDESK, EntityType.CASE, ticket, case, AGENT, changed=["status"]
        )


async def _customer(
    n: int,
    stack: SyncStack,
    producer: AIOKafkaProducer,
    trail: AuditFollower,
    gate: asyncio.Semaphore,
) -> None:
    topic = stack.settings.topic("sync")
    async with gate:
        who = Customer(n)

        async def send(event: Envelope) -> None:
            await producer.send(topic, key=who.link.encode(), value=encode(event))

        await send(who.conversation_event(who.person, op=Op.CREATE, changed=[]))
        await send(who.message(1, f"Order {n} never arrived"))
        await send(who.message(2, f"Tracking number TRK{n:05d}"))
        who.tags = ["escalate"]
        await send(who.conversation_event(ADMIN, op=Op.UPDATE, changed=["tags"]))
        ticket = str((await trail.write(who.link, "case_on_zendesk")).details["record"])
        await send(who.reply(ticket, f"Re-shipped order {n}"))
        solving = datetime.now(UTC)
        await send(who.ticket(ticket, CaseStatus.SOLVED))
        await trail.write(who.link, "message_on_intercom")
        await trail.write(who.link, "case_on_intercom", after=solving)


async def _received(url: str, topic: str) -> float:
    """Records of ``topic`` a worker has read so far (Faust's per-topic counter on its
    ``/metrics``): with several workers, how the sync events were shared between them."""
    return await counter(url, "faust_messages_received_per_topic_total", topic=topic)


def _read_profile(output: Path, args: argparse.Namespace) -> Counter[str]:
    """The CPU split from py-spy's stacks, which are kept where ``--profile`` says."""
    if not output.exists():
        return Counter()
    stacks = output.read_text()
    if args.profile:
        Path(args.profile).write_text(stacks)
    return split(stacks.splitlines())


async def run_dry(run: DryRun, bootstrap: str, folder: Path, *, partitions: int) -> None:
    """Drive the stack and collect what the report needs."""
    args = run.args
    env = {
        "DESKSTREAM_SINK_DRY_RUN": "true",
        "DESKSTREAM_LOG_LEVEL": "warning",
        "DESKSTREAM_TABLE_STANDBY_REPLICAS": str(args.standby_replicas),
    }
    async with (
        sync_stack(
            bootstrap, folder, partitions=partitions, name="bench-dry", extra_env=env,
            workers=args.workers,
        ) as stack,
        AuditFollower(stack.settings) as trail,
    ):  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        sync_topic = stack.settings.topic("sync")
        try:
            pids = [w.process.pid for w in stack.workers]
            idle = [cpu_seconds(pid) for pid in pids]
            await asyncio.sleep(args.idle)
            cpu, started = [cpu_seconds(pid) for pid in pids], time.perf_counter()
            idle_rates = [(c - i) / args.idle for c, i in zip(cpu, idle, strict=True)]
            read = [await _received(w.url, sync_topic) for w in stack.workers]
            urls = [w.url for w in stack.workers]
            filled = await batch_totals(urls, "sync")
            run.idle_cpu = sum(idle_rates)
            spy = profile(pids[0], folder / "py-spy.txt") if args.profile is not None else None
            gate = asyncio.Semaphore(args.concurrency)
            tasks = [
                asyncio.create_task(_customer(n, stack, producer, trail, gate))
                for n in range(args.conversations)
            ]
            await all_done(tasks, args.timeout, stack)
            for task in tasks:
                task.result()
            run.drive_s = time.perf_counter() - started
            records, batches = await batch_totals(urls, "sync")
            run.batch_fill = (records - filled[0], batches - filled[1])
            used = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu, strict=True)]
            run.worker_cpu_s = sum(used)
            run.busy_cpu_s = run.worker_cpu_s - run.idle_cpu * run.drive_s
            if len(pids) > 1:
                for worker, before, cpu_s, rate in zip(
                    stack.workers, read, used, idle_rates, strict=True
                ):
                    events = await _received(worker.url, sync_topic) - before
                    run.per_worker.append((events, cpu_s - rate * run.drive_s))
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await asyncio.to_thread(spy.wait, 60)
                run.split = await asyncio.to_thread(_read_profile, folder / "py-spy.txt", args)
        finally:
            await producer.stop()
        settings = stack.settings
        await read_topic(settings, settings.topic("sync"), events_only(run.sync))
        await read_topic(settings, settings.topic("audit"), lambda v, _: run.audits.append(v))


def report(run: DryRun) -> list[str]:
    args = run.args
    written = [r for r in run.audits if r.stage == "sink" and r.decision.startswith("written_")]
    repeated = sum(n - 1 for n in Counter(r.command_id for r in written).values())
    events = len(run.sync)
    inputs = events + len(written)
    decided: dict[str, float] = {}
    for r in sorted(run.audits, key=lambda r: r.at):
        if r.stage != "sink" and r.event_id:
            decided.setdefault(r.event_id, r.at.timestamp())
    # What the worker produced: audit records (sync stage and sinks), commands, write results,
    # entity snapshots (case events), and at most one changelog record per input.
    snapshots = sum(1 for e, _ in run.sync if e.source.entity_type is EntityType.CASE)
    produced = len(run.audits) + 2 * len(written) + snapshots + inputs
    waits = [
        (decided[e.event_id] - e.ingested_at.timestamp()) * 1000
        for e, _ in run.sync
        if e.event_id in decided
    ]
    per_cpu = events / run.busy_cpu_s
    records, batches = run.batch_fill
    fill = records / batches if batches else 0.0  # of BATCH_MAX (500)
    lines = [
        f"sync stage, sinks in dry-run: {args.conversations} customers, concurrency "
        f"{args.concurrency}, all at once; {events} sync events ({HUMAN_CHANGES} per customer, "
        f"no echoes), {len(written)} commands answered by the dry-run sinks",
        f"drive {run.drive_s:.1f} s; worker CPU {run.worker_cpu_s:.1f} s, {run.busy_cpu_s:.1f} s "
        f"above its idle {run.idle_cpu:.1%} of a core",
        "",
        row("measure", "figure", "target", "ratio"),
        row("sync events per worker CPU-second", f"{per_cpu:.0f}", f"{TARGET_EVENTS_PER_CPU_S:.0f}",
            at_least(per_cpu, TARGET_EVENTS_PER_CPU_S)),
        row("inputs (events + writes) per CPU-s", f"{inputs / run.busy_cpu_s:.0f}", "", None),
        row("worker CPU per sync event, µs", f"{run.busy_cpu_s / events * 1e6:.0f}", "", None),
        row("sync event → decision p50, ms", f"{percentile(waits, 0.5):.0f}", "", None),
        row("sync event → decision p99, ms", f"{percentile(waits, 0.99):.0f}", "", None),
        row("records produced per sync event", f"{produced / events:.2f}", "", None),
        row("sync inputs per batch, mean", f"{fill:.1f}", "", None),
        row("repeated writes (loop detector)", str(repeated), 0, "ok" if not repeated else "LOOP"),
        "(ratio > 1 meets the target)",
        f"records produced: {len(run.audits)} audit records, {len(written)} commands and as many "
        f"write results, {snapshots} entity snapshots, at most {inputs} changelog records",
    ]  # fmt: skip
    if run.per_worker:
        copies = (
            "each worker also keeps a standby copy of the others' links (it reads their "
            "changelog records as they are written)"
            if args.standby_replicas
            else "each worker reads its own partitions only"
        )
        lines.append(f"standby replicas {args.standby_replicas}: {copies}")
    for n, (read, busy) in enumerate(run.per_worker, 1):
        lines.append(
            f"worker {n} of {len(run.per_worker)}: {read:.0f} sync events read, {busy:.1f} s "
            f"busy CPU, {read / busy:.0f} sync events per CPU-second"
        )
    if run.split:
        lines += ["", "worker CPU by component (py-spy, while the events flowed):"]
        lines += split_report(run.split)
    return lines
