"""One-shot reads from the command line (``deskstream backfill``, ``deskstream reconcile``):
a ``Source`` read until it has caught up, its records written to ``<prefix>.raw`` exactly as a
worker's source runner writes them (``acks=all``, keyed as webhook ingest keys), so the workers
take them through the normal pipeline.

The guarantees are the source runtime's (``app.source_runner``): a batch's position is stored
(``app.source_positions``, in ``<prefix>.sources`` under the read's name) only after Kafka
acknowledged every record of the batch, so an interrupted read resumes after the last batch
that fully landed, and what it sends again has the same delivery ids, hence the same event
ids, which the sync stage drops.

**Live traffic first.** A one-shot read spends the same platform budget as the workers, and
what it brings in becomes writes the workers' sinks make. Two brakes, both across processes:

- its reads go through a ``YieldingBudget``: at most ``share`` of the connector's limit, and
  only while the platform's own count of calls left (the rate-limit headers of every answer,
  which the workers' calls move too) is above half;
- before each few records (``chunk``), ``LagGate`` waits while the workers' consumer group is
  more than ``max_lag`` records behind on the raw, sync and target commands topics: a
  backfill adds work only when the stages have caught up with live traffic, and never more
  than a few records at once (records of one link share partitions with live traffic, and a
  partition is worked in order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.progress import Progress
from app.source_positions import PositionStore
from connectors.base.ratelimit import RateBudget, register_account_budget
from connectors.base.source import Position, RawRecord, Source, SourceBatch
from schemas.codec import encode

__all__ = ["LagGate", "PullResult", "RawWriter", "pull_once", "share_option", "yield_to_platform"]

#: ``--share``: how much of a connector's rate limit a one-shot read's calls may spend
share_option = click.option(
    "--share",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.01, 1.0),
    help="Share of the connector's rate limit the reads may spend.",
)


def yield_to_platform(source: Source, connector_id: str) -> RateBudget | None:
    """Register the account view of ``source`` (its ``account_view``, where it has one) as the
    budget its reads yield to: in this process no sink does, and the answers' rate-limit
    headers keep it at what the platform says is left. The caller keeps the returned budget
    alive for the read (the registry holds it weakly)."""
    view = getattr(source, "account_view", None)
    account = view() if view is not None else None
    if isinstance(account, RateBudget):
        register_account_budget(connector_id, account)
        return account
    return None


@dataclass
class PullResult:
    records: int = 0
    batches: int = 0
    #: the read reached its end (not interrupted)
    complete: bool = False
    #: seconds spent waiting for live traffic (the lag gate)
    waited_s: float = 0.0


class RawWriter:
    """Raw records and positions to Kafka, each acknowledged by every in-sync replica."""

    def __init__(self, bootstrap: str, raw_topic: str, sources_topic: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
        )
        self._raw = raw_topic
        self.positions = PositionStore(bootstrap, sources_topic, self._send)

    async def __aenter__(self) -> RawWriter:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def _send(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        await self._producer.send_and_wait(topic, value, key=key, partition=partition)

    async def publish(self, records: list[RawRecord]) -> None:
        pending = [
            await self._producer.send(self._raw, encode(r.delivery), key=r.key.encode())
            for r in records
        ]
        await asyncio.gather(*pending)  # every record acknowledged, or the read fails


class LagGate:
    """Waits while the workers are behind: live traffic keeps priority (module docstring)."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: list[str],
        *,
        partitions: int,
        max_lag: int,
        every_s: float = 1.0,
    ) -> None:
        self._group = group
        self._partitions = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self._max_lag = max_lag
        self._every = every_s
        self.waited_s = 0.0
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)

    async def __aenter__(self) -> LagGate:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def lag(self) -> int:
        """Records of the topics the group has not committed yet (all the records of a
        partition it never committed)."""
        partitions = self._partitions
        ends = await self._consumer.end_offsets(partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(
            self._group, partitions=partitions
        )
        done = {tp: c.offset for tp, c in committed.items() if c.offset >= 0}
        return sum(max(0, ends[tp] - max(starts[tp], done.get(tp, 0))) for tp in partitions)

    async def wait(self, progress: Progress) -> None:
        while (lag := await self.lag()) > self._max_lag:
            progress.show(note=f"waiting: the workers are {lag} records behind", force=True)
            await asyncio.sleep(self._every)
            self.waited_s += self._every


async def pull_once(
    source: Source,
    position: Position | None,
    *,
    publish: Callable[[list[RawRecord]], Awaitable[None]],
    store: Callable[[SourceBatch], Awaitable[None]] | None,
    progress: Progress,
    gate: LagGate | None = None,
    chunk: int = 5,
) -> PullResult:
    """Read ``source`` from ``position`` until it has caught up: each batch's records
    acknowledged, then its position stored, then the progress line moved. With a ``gate``,
    records go out ``chunk`` at a time, the gate asked before each: a page of a hundred
    records dropped at once would queue ahead of live traffic in every stage."""
    result = PullResult()
    async with contextlib.aclosing(source.batches(position)) as batches:  # type: ignore[type-var]
        async for batch in batches:
            step = chunk if gate is not None else max(1, len(batch.records))
            for start in range(0, len(batch.records), step):
                if gate is not None:
                    await gate.wait(progress)
                await publish(batch.records[start : start + step])
            if store is not None:
                await store(batch)
            result.records += len(batch.records)
            result.batches += 1
            progress.advance(len(batch.records), total=batch.total)
            if batch.caught_up:
                result.complete = True
                break
    result.waited_s = gate.waited_s if gate is not None else 0.0
    return result
