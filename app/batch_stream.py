"""Faust's ``Stream`` with ``noack_take`` batches that stop ticking while nothing arrives.

Faust's ``noack_take(max_, within)`` wakes every ``within`` seconds to hand over what its
buffer holds, records or none. normalize and sync take with ``within`` = 10 ms, so an idle
worker woke 200 times a second, each time through mode's ``wait`` (tasks and an
``asyncio.wait``): 3 to 4.5 % of a core spent doing nothing (``bench.ingest_pipeline``'s
"worker CPU with no traffic"; 0.75 % with a 200 ms window instead, 0.4 to 0.6 % with this
stream).

This stream notes each record that reaches the stream. A window in which none arrived means
the buffer is empty: the next wait ends when a record arrives (or the stream stops, or after
``IDLE_WAIT_S``), and that record is handed over at once rather than at the next tick,
which waits 0 to 10 ms. While records keep coming each window still waits up to ``within``
for the batch to fill.

And a window that ends while records wait in the stream's channel queue is extended, a window
at a time, until the batch is full, the queue is empty or ``FILL_MAX_S`` has passed. Faust
starts each window when the last batch has been handed back, and records reach the buffer one
at a time through the stream's processors, behind everything else the worker is doing: a
worker with a backlog closed its windows with 1,000 to 2,800 fetched records still queued and
took batches of 33 (two dry-run sync workers, ``bench.sync_pipeline --workers 2``), paying a
batch's sends, changelog writes and acks for every 33 decisions. The records already in the
buffer wait up to ``FILL_MAX_S`` longer; the queued ones are decided sooner, as the worker
spends less per record (two such workers: decision p50 2.2 → 1.5 s, p99 3.1 → 2.6 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any, TypeVar

import faust
from faust.types import ChannelT
from mode.utils.times import Seconds

__all__ = ["FILL_MAX_S", "IDLE_WAIT_S", "BatchStream"]

#: the longest an idle stream waits without looking at its buffer (Faust's: each window)
IDLE_WAIT_S = 1.0
#: the longest a window is extended while fetched records still wait in the channel queue
FILL_MAX_S = 0.2

T = TypeVar("T")


class BatchStream(faust.Stream[T]):
    #: set by each record that reaches the stream; None until noack_take is used
    _arrived: asyncio.Event | None = None

    def noack_take(self, max_: int, within: Seconds) -> AsyncGenerator[Sequence[T], None]:
        arrived = self._arrived = asyncio.Event()

        def note_arrival(value: T) -> T:
            arrived.set()
            return value

        # Added before Faust's own buffering processor (noack_take adds it when the batches
        # are first iterated): a record is noted, then buffered, with no await in between.
        self.add_processor(note_arrival)
        return super().noack_take(max_, within)

    # The signature is mode's (Service.wait_for_stopped), overridden: timeout stays a parameter.
    async def wait_for_stopped(
        self,
        *coros: Any,
        timeout: Seconds = None,  # type: ignore[assignment]  # noqa: ASYNC109
    ) -> bool:
        arrived = self._arrived
        if arrived is None or timeout is None:
            return await super().wait_for_stopped(*coros, timeout=timeout)
        # Only noack_take waits here with a timeout: for its buffer to fill, or the window.
        if arrived.is_set():
            arrived.clear()  # records came in the last window: wait the window out as Faust does
            stopped = await super().wait_for_stopped(*coros, timeout=timeout)
            return await self._fill_from_queue(coros, timeout, stopped)
        # Nothing came in the last window, so the buffer is empty: wait for a record without
        # waking every window, then hand it over at once (noack_take yields what it holds).
        # Still at most IDLE_WAIT_S: a record buffered unnoticed would wait that long, not
        # for the next one.
        return await super().wait_for_stopped(arrived.wait(), timeout=IDLE_WAIT_S)

    async def _fill_from_queue(
        self, coros: tuple[Any, ...], window: Seconds, stopped: bool
    ) -> bool:
        # mode's wait reports a timeout as "stopped" too: ask the stream itself whether it is.
        channel = self.channel
        if not isinstance(channel, ChannelT):
            return stopped  # a stream over a plain iterable: nothing queued ahead of it
        buffer_full, queue = coros[0], channel.queue
        deadline = self.loop.time() + FILL_MAX_S
        while (
            queue.qsize()
            and not buffer_full.is_set()
            and not self.should_stop
            and self.loop.time() < deadline
        ):
            stopped = await super().wait_for_stopped(*coros, timeout=window)
        return stopped
