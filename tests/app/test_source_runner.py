"""The source runner with the real Zendesk export source (sandbox): a position is stored only
after its records were acknowledged; a refused write is retried from the stored position
(the same deliveries again) and never ends the run; a lost lease stores nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from app.metrics import Metrics
from app.source_runner import SourceRunner
from connectors.base.settings import SourceSettings
from connectors.base.source import Position, RawRecord, Source, SourceBatch
from connectors.zendesk.incremental import ZendeskIncrementalTickets
from tests.sandboxes.zendesk.conftest import ZendeskEnv, clock, zendesk

__all__ = ["clock", "zendesk"]  # the sandbox fixtures, shared from its own tests


class Kafka:
    """What the runner hands to Kafka, in order; ``refuse`` publishes fail (no acks)."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.log: list[tuple[str, object]] = []

    async def publish(self, records: list[RawRecord]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError("no acknowledgement from the brokers")
        self.log += [("record", r.delivery.delivery_id) for r in records]

    async def store(self, batch: SourceBatch) -> None:
        self.log.append(("position", batch.position))

    def stored(self) -> list[object]:
        return [value for kind, value in self.log if kind == "position"]


@pytest.fixture
async def sources(zendesk: ZendeskEnv) -> AsyncIterator[list[Source]]:
    built: list[Source] = []
    yield built
    for source in built:
        await source.aclose()


def runner(
    zendesk: ZendeskEnv, kafka: Kafka, built: list[Source], *, holds: bool = True
) -> tuple[SourceRunner, Metrics]:
    def build() -> Source:
        source = ZendeskIncrementalTickets(
            connector_id="zd",
            settings=zendesk.connector_settings(),
            source=SourceSettings(poll_seconds=0.05, start_lookback_seconds=300, batch_size=2),
            clock=lambda: zendesk.clock.now().timestamp(),
        )
        built.append(source)
        return source

    async def load() -> Position | None:
        return None

    metrics = Metrics(CollectorRegistry())
    return SourceRunner(
        build,
        name="zd.tickets",
        publish=kafka.publish,
        load=load,
        store=kafka.store,
        holds_lease=lambda: holds,
        metrics=metrics,
        max_backoff_s=0.05,
    ), metrics


async def run_until(run: SourceRunner, done: Callable[[], bool], seconds: float = 10.0) -> None:
    task = asyncio.ensure_future(run.run())
    try:
        async with asyncio.timeout(seconds):
            while not done():  # noqa: ASYNC110 - the runner has no event to wait on
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_positions_follow_acknowledged_records_and_failures_retry(
    zendesk: ZendeskEnv, sources: list[Source]
) -> None:
    zendesk.clock.advance(120)
    ids = [str((await zendesk.create_ticket())["id"]) for _ in range(3)]
    zendesk.clock.advance(61)
    kafka = Kafka(refuse=1)
    run, metrics = runner(zendesk, kafka, sources)
    await run_until(run, lambda: len(kafka.stored()) >= 2)
    # The refused first batch stored nothing; the retry read the same deliveries again.
    records = [value for kind, value in kafka.log if kind == "record"]
    assert [str(r).split(":")[1].split("@")[0] for r in records[:3]] == ids
    # Every position comes after the records of its batch.
    kinds = [kind for kind, _ in kafka.log]
    assert kinds[:5] == ["record", "record", "position", "record", "position"]
    assert metrics.source_errors.labels("zd.tickets")._value.get() == 1
    assert len(sources) >= 2  # the failed run's source was closed and a new one built
    assert metrics.source_running.labels("zd.tickets")._value.get() == 0  # after the stop


async def test_a_worker_without_the_lease_stores_no_position(
    zendesk: ZendeskEnv, sources: list[Source]
) -> None:
    zendesk.clock.advance(120)
    await zendesk.create_ticket()
    zendesk.clock.advance(61)
    kafka = Kafka()
    run, _ = runner(zendesk, kafka, sources, holds=False)
    async with asyncio.timeout(10):
        await run.run()  # returns by itself: the lease is gone
    assert kafka.stored() == []
