"""One lane per partition: commands of a partition run in order, partitions run side by side.

A Faust agent handles the events of all its partitions one after another, so one slow or
rate-limited write (Zendesk's 30 updates per ticket per 10 minutes, a Retry-After of a minute)
would hold up every other ticket on the worker. Lanes keep per-partition order, which is all
the ordering the sinks need (commands are keyed by link), and let the other partitions go on.

A lane that falls behind pauses its partition in the consumer (so memory stays bounded) and
resumes it once it has caught up. A lane whose partition was revoked in a rebalance drops its
queue without acking: the partition's new owner processes those commands again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import faust
from faust.types import TP

__all__ = ["Lanes", "PartitionControl"]

log = logging.getLogger(__name__)


class PartitionControl(Protocol):
    def pause_partitions(self, tps: Iterable[TP]) -> None: ...
    def resume_partitions(self, tps: Iterable[TP]) -> None: ...
    def assignment(self) -> set[TP]: ...


Handler = Callable[[faust.EventT[Any]], Awaitable[None]]


class Lanes:
    def __init__(
        self, handler: Handler, control: Callable[[], PartitionControl], *, depth: int = 64
    ) -> None:
        self._handler = handler
        self._control = control
        self._depth = depth
        self._queues: dict[TP, asyncio.Queue[faust.EventT[Any]]] = {}
        self._tasks: dict[TP, asyncio.Task[None]] = {}
        self._paused: set[TP] = set()

    def submit(self, event: faust.EventT[Any]) -> None:
        # Faust's own TP: messages from the aiokafka driver carry aiokafka's TopicPartition,
        # and faust's resume_partitions puts what it is given into its active set as it is,
        # where its fetcher asserts they are TPs (the worker stopped on the first resume).
        tp = TP(event.message.tp.topic, event.message.tp.partition)
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = asyncio.Queue()
            self._tasks[tp] = asyncio.create_task(
                self._run(tp, queue), name=f"lane-{tp.topic}-{tp.partition}"
            )
        queue.put_nowait(event)
        if queue.qsize() >= self._depth and tp not in self._paused:
            self._paused.add(tp)
            self._control().pause_partitions([tp])
            log.info(
                "lane paused topic=%s partition=%s backlog=%s",
                tp.topic,
                tp.partition,
                queue.qsize(),
            )

    async def _run(self, tp: TP, queue: asyncio.Queue[faust.EventT[Any]]) -> None:
        while True:
            event = await queue.get()
            if tp not in self._control().assignment():
                # Revoked: leave the rest to the new owner, unacked.
                while not queue.empty():
                    queue.get_nowait()
                continue
            await self._handler(event)
            if tp in self._paused and queue.qsize() <= self._depth // 2:
                self._paused.discard(tp)
                self._control().resume_partitions([tp])
                log.info("lane resumed topic=%s partition=%s", tp.topic, tp.partition)

    def backlog(self) -> int:
        return sum(q.qsize() for q in self._queues.values())

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
