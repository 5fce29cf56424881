"""What the sync benchmarks share (``bench.sync_pipeline`` and its ``--dry-run``,
``bench.sync_dry_run``): reading a topic, following the audit topic while people wait on the
sync's writes, a process's CPU time, a worker's counters, and waiting for every customer."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_connection import bootstrap_servers
from app.rehearsal import SyncStack
from app.settings import Settings
from schemas.codec import decode
from schemas.errors import DeskstreamError
from schemas.models import AuditRecord, Envelope

__all__ = [
    "DONE",
    "AuditFollower",
    "all_done",
    "batch_totals",
    "counter",
    "events_only",
    "read_topic",
]

DONE = ("written_", "unchanged_")  # sink outcomes of a command carried out


async def read_topic(
    settings: Settings,
    topic: str,
    sink: Callable[[Any, int], object],
    *,
    until_end: bool = True,
    on_batch: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Read ``topic`` from the start to its current end (or until cancelled): each decoded
    value and its Kafka timestamp (ms) go to ``sink``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while not until_end or any([await consumer.position(tp) < ends[tp] for tp in parts]):
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                for message in messages:
                    sink(decode(message.value), message.timestamp)
            if batch and on_batch is not None:
                await on_batch()
    finally:
        await consumer.stop()


class AuditFollower:
    """Follows the audit topic during the run; people wait here for the sync's writes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._writes: defaultdict[str, list[AuditRecord]] = defaultdict(list)
        self._batch = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def _add(self, value: Any, _: int) -> None:
        if isinstance(value, AuditRecord) and value.stage == "sink" and value.link_id:
            self._writes[value.link_id].append(value)

    async def _wake(self) -> None:
        async with self._batch:
            self._batch.notify_all()

    async def __aenter__(self) -> AuditFollower:
        topic = self.settings.topic("audit")
        self._task = asyncio.create_task(
            read_topic(self.settings, topic, self._add, until_end=False, on_batch=self._wake)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def write(self, link: str, suffix: str, after: datetime | None = None) -> AuditRecord:
        """The first carried-out sink write ``*_<suffix>`` on ``link`` (at or after ``after``)."""
        while True:
            for record in self._writes.get(link, ()):
                done = record.decision.startswith(DONE) and record.decision.endswith(suffix)
                if done and (after is None or record.at >= after):
                    return record
            async with self._batch:
                await self._batch.wait()


async def counter(url: str, sample: str, **labels: str) -> float:
    """The sum of a worker's ``sample`` lines (on its ``/metrics``) that carry ``labels``."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics")).text
    wanted = [f'{name}="{value}"' for name, value in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(sample + "{") and all(label in line for label in wanted)
    )


def events_only(into: list[tuple[Envelope, int]]) -> Callable[[Any, int], None]:
    """A ``read_topic`` sink for the sync topic, which carries Envelopes and Timers (a decision
    the sync stage asked to take again later: ``app/topics.py``): the events, into ``into``."""

    def keep(value: Any, timestamp: int) -> None:
        if isinstance(value, Envelope):
            into.append((value, timestamp))

    return keep


async def batch_totals(urls: Sequence[str], agent: str) -> tuple[float, float]:
    """(records, batches) the workers' batched ``agent`` (normalize, sync) took so far, from
    ``deskstream_batch_inputs``: the difference of two readings over its batches is the mean
    batch fill in between."""
    records = batches = 0.0
    for url in urls:
        records += await counter(url, "deskstream_batch_inputs_sum", agent=agent)
        batches += await counter(url, "deskstream_batch_inputs_count", agent=agent)
    return records, batches


async def all_done(tasks: Sequence[asyncio.Task[Any]], within: float, stack: SyncStack) -> None:
    """Wait for every customer's task; raise with the worker's log when some did not finish
    ``within`` seconds (each task's own error is raised when its result is read)."""
    _, pending = await asyncio.wait(tasks, timeout=within)
    for task in pending:
        task.cancel()
    if pending:
        raise DeskstreamError(
            f"{len(pending)} conversations did not converge within {within:.0f} s; the "
            f"worker log ({stack.worker.log}) ends with:\n{stack.worker.log_tail()}"
        )
