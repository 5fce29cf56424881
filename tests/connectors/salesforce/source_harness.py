"""Salesforce sources as a worker builds them (the registry, from ``ConnectorSettings``)
against the in-process sandbox, driven the way the runtime drives them: a batch's position is
stored before the next batch is asked for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from connectors.base.registry import build_normaliser, build_source
from connectors.base.settings import ConnectorSettings
from connectors.base.source import Position, RawRecord, Source, SourceBatch
from connectors.salesforce.source_cdc import SalesforceChanges
from connectors.salesforce.source_comments import SalesforceComments
from connectors.salesforce.source_reconcile import SalesforceReconcile
from schemas.models import Envelope
from tests.connectors.salesforce.cdc_harness import assert_quiet
from tests.connectors.salesforce.sink_harness import connector_settings
from tests.sandboxes.salesforce.conftest import SalesforceEnv

__all__ = ["OTHER_USER", "Driver", "build", "driving", "normalise", "source_settings_for"]

OTHER_USER = "005000000000000AAA"


def source_settings_for(env: SalesforceEnv, kind: str, **source: Any) -> ConnectorSettings:
    """``DESKSTREAM_CONNECTORS__sf__SOURCES__<kind>__*`` for this sandbox; a person acting
    through the sandbox's user is not the integration user (``OTHER_USER`` is)."""
    return connector_settings(
        env,
        service_account_id=OTHER_USER,
        pubsub_endpoint=env.sandbox.pubsub_target,
        pubsub_ca_file=str(env.sandbox.pubsub_ca_file),
        sources={kind: source},
    )


async def build(env: SalesforceEnv, settings: ConnectorSettings, kind: str) -> Source:
    """The source the worker's registry builds for ``kind``, on the sandbox's manual clock."""
    built = build_source("sf", settings, kind)
    await built.aclose()
    cls = type(built)
    assert issubclass(cls, SalesforceChanges | SalesforceComments | SalesforceReconcile)
    return cls(
        connector_id="sf",
        settings=settings,
        source=settings.sources[kind],
        clock=lambda: env.clock.now().timestamp(),
    )


def normalise(settings: ConnectorSettings, record: RawRecord) -> list[Envelope]:
    return build_normaliser("sf", settings).normalise(record.delivery)


class Driver:
    """Pulls batches in a task; ``next_batch`` stores the position (as the runtime does once
    Kafka acknowledged the records) and only then lets the source go on."""

    def __init__(self, source: Source, position: Position | None = None) -> None:
        self.source = source
        self.position = position
        self.stored = 0
        self._queue: asyncio.Queue[tuple[SourceBatch, asyncio.Event] | BaseException]
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for batch in self.source.batches(self.position):
                taken = asyncio.Event()
                await self._queue.put((batch, taken))
                await taken.wait()
        except Exception as exc:  # handed to the test, which raises it
            await self._queue.put(exc)

    async def next_batch(self, wait_s: float = 10.0) -> SourceBatch:
        got = await asyncio.wait_for(self._queue.get(), wait_s)
        if isinstance(got, BaseException):
            raise got
        batch, taken = got
        if batch.position != self.position:
            self.position, self.stored = batch.position, self.stored + 1
        taken.set()
        return batch

    async def records(self, count: int, wait_s: float = 10.0) -> list[RawRecord]:
        found: list[RawRecord] = []
        while len(found) < count:
            found += (await self.next_batch(wait_s)).records
        assert len(found) == count, [r.delivery.delivery_id for r in found]
        return found

    async def until_caught_up(self, wait_s: float = 10.0) -> list[RawRecord]:
        found: list[RawRecord] = []
        while True:
            batch = await self.next_batch(wait_s)
            found += batch.records
            if batch.caught_up:
                return found

    async def assert_quiet(self, wait_s: float = 1.0) -> None:
        """No batch with records within ``wait_s``."""
        await assert_quiet(self.next_batch, lambda batch: batch.records, wait_s)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.source.aclose()


@contextlib.asynccontextmanager
async def driving(source: Source, position: Position | None = None) -> AsyncIterator[Driver]:
    driver = Driver(source, position)
    try:
        yield driver
    finally:
        await driver.close()
