"""Drives a CDC subscriber in a task so tests can wait for batches with timeouts.

Cancelling a pending ``anext`` of an async generator would close it; the reader task keeps
the generator alive and hands batches over through a queue instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal, TypeVar

from connectors.salesforce.cdc_cometd import CometdSubscriber
from connectors.salesforce.cdc_items import DecodedChange, StreamItem
from connectors.salesforce.cdc_pubsub import PubSubSubscriber
from connectors.salesforce.cdc_replay import ReplayPosition
from connectors.salesforce.cdc_stream import Batch, ChangeSubscriber
from tests.connectors.salesforce.sandbox_tokens import SandboxTokens
from tests.sandboxes.salesforce.conftest import SalesforceEnv

__all__ = ["Reader", "Transport", "assert_quiet", "open_subscriber"]

Transport = Literal["pubsub", "cometd"]


@contextlib.asynccontextmanager
async def open_subscriber(
    transport: Transport, env: SalesforceEnv, tokens: SandboxTokens, *, max_in_flight: int = 100
) -> AsyncIterator[ChangeSubscriber]:
    if transport == "cometd":
        yield CometdSubscriber(tokens, max_in_flight=max_in_flight)
        return
    async with env.sandbox.pubsub_channel() as channel:
        yield PubSubSubscriber(channel, tokens, max_in_flight=max_in_flight)


T = TypeVar("T")


async def assert_quiet(
    next_batch: Callable[[float], Awaitable[T]], news: Callable[[T], object], wait_s: float
) -> None:
    """Every batch ``next_batch`` gives within ``wait_s`` has no ``news``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while (left := deadline - loop.time()) > 0:
        try:
            batch = await next_batch(left)
        except TimeoutError:
            return
        assert not news(batch), batch


class Reader:
    def __init__(
        self,
        subscriber: ChangeSubscriber,
        channel: str,
        replay: ReplayPosition | None,
        *,
        auto_ack: bool = True,
    ) -> None:
        self.batches: asyncio.Queue[Batch | BaseException] = asyncio.Queue()
        self.auto_ack = auto_ack
        self.position: ReplayPosition | None = replay
        self.unacked: list[Batch] = []
        self.max_unacked_events = 0
        self._task = asyncio.create_task(self._run(subscriber.events(channel, replay)))

    async def _run(self, batches: AsyncIterator[Batch]) -> None:
        try:
            async for batch in batches:
                await self.batches.put(batch)
        except Exception as exc:  # handed to the test, which re-raises it
            await self.batches.put(exc)

    async def next_batch(self, wait_s: float = 10.0) -> Batch:
        got = await asyncio.wait_for(self.batches.get(), wait_s)
        if isinstance(got, BaseException):
            raise got
        # What the caller does: handle, store the position, ack.
        if got.position is not None:
            self.position = got.position
        if self.auto_ack:
            got.ack()
        else:
            self.unacked.append(got)
            self.max_unacked_events = max(
                self.max_unacked_events, sum(b.events for b in self.unacked)
            )
        return got

    async def items(
        self, count: int, wait_s: float = 10.0, keep: Callable[[StreamItem], bool] | None = None
    ) -> list[StreamItem]:
        found: list[StreamItem] = []
        while len(found) < count:
            batch = await self.next_batch(wait_s)
            found += [i for i in batch.items if keep is None or keep(i)]
        return found

    async def changes(self, count: int) -> list[DecodedChange]:
        items = await self.items(count)
        assert all(isinstance(i, DecodedChange) for i in items), items
        return [i for i in items if isinstance(i, DecodedChange)]

    async def assert_quiet(self, wait_s: float = 1.0) -> None:
        """No batch with items arrives within ``wait_s``."""
        await assert_quiet(self.next_batch, lambda batch: batch.items, wait_s)

    def ack_all(self) -> None:
        for batch in self.unacked:
            batch.ack()
        self.unacked.clear()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
