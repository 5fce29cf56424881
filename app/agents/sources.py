"""Pull-based sources in a cluster: exactly one worker runs each, leased through Kafka's own
group assignment.

The lease: ``<prefix>.sources`` has one partition per slot, and each source hashes to a slot
(``app.source_positions.slot_of``). Every worker subscribes to the topic in the consumer
group (the ``source-leases`` agent, which reads the position records and does nothing with
them), so the group coordinator gives each slot to exactly one live worker. The worker
assigned a slot starts the slot's sources from the position stored in that same partition;
on revocation (a rebalance, a graceful stop) it stops them and waits for them to finish,
inside the revocation callback, which the coordinator waits for before it hands the slot to
anyone else. A worker that dies (kill -9) holds nothing once its session times out
(``broker_session_timeout``, 30 s): the rebalance gives its slots to the survivors, which
resume from the stored positions.

Positions are stored only after the batch's raw records are acknowledged (``acks=all``), and
only while ``app.consumer.assignment()`` still holds the slot (a worker that lost it between
two batches stops instead of writing over its successor). What a kill re-reads is at most
the batch in flight: the same deliveries, the same event ids, dropped by the sync stage's
dedupe (``streams.sync``, step 1: ``duplicate_dropped`` in the audit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

import faust
from faust.types import TP

from app.agents.acks import Revocations, hold
from app.channels import Channels
from app.metrics import Metrics
from app.settings import Settings
from app.source_positions import PositionStore, slot_of
from app.source_runner import SourceRunner
from app.webhook_watch import WebhookWatch
from connectors.base.registry import build_source, build_sources
from connectors.base.source import RawRecord, Source, SourceBatch

__all__ = ["SourceLeases", "register_sources"]

log = logging.getLogger(__name__)


class SourceLeases:
    """Starts the sources of the slots this worker is assigned, stops those of revoked ones."""

    def __init__(self, topic: str, runners: dict[str, tuple[int, SourceRunner]]) -> None:
        self._topic = topic
        self._runners = runners
        self._running: dict[str, asyncio.Future[None]] = {}

    def assigned(self, tps: set[Any]) -> None:
        slots = {tp.partition for tp in tps if tp.topic == self._topic}
        for name, (slot, runner) in sorted(self._runners.items()):
            task = self._running.get(name)
            if slot in slots and (task is None or task.done()):
                self._running[name] = hold(asyncio.ensure_future(runner.run()))

    async def revoked(self, tps: set[Any]) -> None:
        slots = {tp.partition for tp in tps if tp.topic == self._topic}
        stopping = [
            (name, self._running.pop(name))
            for name, (slot, _) in sorted(self._runners.items())
            if slot in slots and name in self._running
        ]
        for _, task in stopping:
            task.cancel()
        for name, task in stopping:
            # Cancelled runs end at their next await; nothing they do after this returns.
            await asyncio.gather(task, return_exceptions=True)
            log.info("source lease released source=%s", name)


def register_sources(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    revocations: Revocations,
    bootstrap_servers: str,
    watch: WebhookWatch | None = None,
) -> SourceLeases | None:
    """The lease agent and the runners of every configured source (None: no source)."""
    built = [
        source
        for connector_id, config in sorted(settings.connectors.items())
        for source in build_sources(connector_id, config)
    ]
    if not built:
        return None
    topic_name = settings.topic("sources")
    slots = settings.partitions
    store = PositionStore(bootstrap_servers, topic_name, _sender(app))
    raw = channels.raw

    async def publish(records: list[RawRecord]) -> None:
        pending = [await raw.send(key=r.key.encode(), value=r.delivery) for r in records]
        await asyncio.gather(*pending)  # every record acknowledged, or the run fails

    def runner_for(first: Source) -> SourceRunner:
        name, slot = first.name, slot_of(first.name, slots)
        fresh: list[Source] = [first]

        def build() -> Source:
            # A source is closed when a run ends: every later run builds a new one.
            return fresh.pop() if fresh else _rebuild(settings, name)

        async def load() -> Any:
            return await store.load(name, slot)

        async def save(batch: SourceBatch) -> None:
            await store.store(name, slot, batch)

        def holds() -> bool:
            return TP(topic_name, slot) in app.consumer.assignment()

        def stored(batch: SourceBatch) -> None:
            # Changes a poll found are changes the platform should have pushed too.
            if watch is None:
                return
            for record in batch.records:
                if record.changed_at is not None:
                    watch.polled(record.delivery.connector_id, record.changed_at.timestamp())

        return SourceRunner(
            build,
            name=name,
            publish=publish,
            load=load,
            store=save,
            holds_lease=holds,
            metrics=metrics,
            max_backoff_s=settings.source_max_backoff_seconds,
            on_stored=stored,
        )

    runners = {s.name: (slot_of(s.name, slots), runner_for(s)) for s in built}
    leases = SourceLeases(topic_name, runners)
    lease_topic = app.topic(
        topic_name, partitions=slots, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(lease_topic, name="source-leases")
    async def hold_leases(stream: faust.StreamT[Any]) -> None:
        # Subscribing is the point: the group's assignment of this topic is the lease.
        async for _ in stream:
            pass

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        leases.assigned(set(args[0]))

    app.on_partitions_assigned.connect(on_assigned)
    revocations.before_commit(leases.revoked)
    log.info(
        "sources configured names=%s slots=%s",
        ",".join(sorted(runners)),
        ",".join(f"{n}:{slot}" for n, (slot, _) in sorted(runners.items())),
    )
    return leases


def _rebuild(settings: Settings, name: str) -> Source:
    connector_id, _, kind = name.rpartition(".")  # names are <connector id>.<kind>
    return build_source(connector_id, settings.connectors[connector_id], kind)


def _sender(app: faust.App) -> Callable[[str, bytes, bytes, int], Any]:
    async def send(topic: str, key: bytes, value: bytes, partition: int) -> None:
        producer = cast(Any, app.producer)
        await (await producer.send(topic, key, value, partition, None, None))

    return send
