"""One lane per partition: commands of a partition run in order, partitions run side by side.

A Faust agent handles the events of all its partitions one after another, so one slow or
rate-limited write (Zendesk's 30 updates per ticket per 10 minutes, a Retry-After of a minute)
would hold up every other ticket on the worker. Lanes keep per-partition order, which is all
the ordering the sinks need (commands are keyed by link), and let the other partitions go on.

A lane that falls behind pauses its partition in the consumer (so memory stays bounded) and
resumes it once it has caught up.

A lane never dies and never skips: when its handler raises (a send Kafka refused, a bug), the
failure is logged with the command's position, counted, and the same event is handed over
again after a backoff, marked as possibly executed (the first attempt may have written).

A lane never judges ownership by the consumer's assignment either: during a rebalance that
view is briefly empty, and a command dropped on it was committed over by the commands after
it (Faust commits past one unacked offset, and past any on a partition never committed).
A partition revoked in a rebalance, or every partition when the worker stops, is *released*:
its queue is dropped unacked (the next owner reads those records again) and the command in
progress is given ``grace`` seconds to finish before it is cancelled. Without that wait the
next owner would start the same command while this worker is still executing it, and no
read-before-write can see a write that has not landed yet (a SIGTERM restart once wrote the
same comment twice 70 ms apart). Only a command still running after the grace period is cut,
or one waiting between two attempts (``connectors.base.retry.between_attempts``), which has
nothing on its way and would otherwise hold the rebalance for its whole backoff; its next
owner gets it as possibly executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import faust
from faust.types import TP

from app.agents.acks import Revocations, expect, settle
from connectors.base.retry import between_attempts, wait_between_attempts

__all__ = ["Lanes", "PartitionControl"]

log = logging.getLogger(__name__)

#: seconds between two attempts at an event whose handler raised, doubling up to the cap
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


class PartitionControl(Protocol):
    def pause_partitions(self, tps: Iterable[TP]) -> None: ...
    def resume_partitions(self, tps: Iterable[TP]) -> None: ...


#: ``handler(event, again)``: ``again`` is True when an earlier attempt at it raised
Handler = Callable[[faust.EventT[Any], bool], Awaitable[None]]


@dataclass
class _Lane:
    queue: asyncio.Queue[faust.EventT[Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    #: set while no event is being handled
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class Lanes:
    def __init__(
        self,
        handler: Handler,
        control: Callable[[], PartitionControl],
        *,
        depth: int = 64,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._handler = handler
        self._control = control
        self._depth = depth
        self._on_failure = on_failure
        self._lanes: dict[TP, _Lane] = {}
        self._paused: set[TP] = set()

    def submit(self, event: faust.EventT[Any]) -> None:
        # Faust's own TP: messages from the aiokafka driver carry aiokafka's TopicPartition,
        # and faust's resume_partitions puts what it is given into its active set as it is,
        # where its fetcher asserts they are TPs (the worker stopped on the first resume).
        tp = TP(event.message.tp.topic, event.message.tp.partition)
        lane = self._lanes.get(tp)
        if lane is None:
            lane = self._lanes[tp] = _Lane()
            lane.idle.set()
            lane.task = asyncio.create_task(
                self._run(tp, lane), name=f"lane-{tp.topic}-{tp.partition}"
            )
            log.info(
                "lane opened topic=%s partition=%s first_offset=%s",
                tp.topic,
                tp.partition,
                event.message.offset,
            )
        lane.queue.put_nowait(event)
        if lane.queue.qsize() >= self._depth and tp not in self._paused:
            self._paused.add(tp)
            self._control().pause_partitions([tp])
            log.info(
                "lane paused topic=%s partition=%s backlog=%s",
                tp.topic,
                tp.partition,
                lane.queue.qsize(),
            )

    async def _run(self, tp: TP, lane: _Lane) -> None:
        while True:
            event = await lane.queue.get()
            lane.idle.clear()
            try:
                await self._handle(tp, event)
            finally:
                lane.idle.set()
            if tp in self._paused and lane.queue.qsize() <= self._depth // 2:
                self._paused.discard(tp)
                self._control().resume_partitions([tp])
                log.info("lane resumed topic=%s partition=%s", tp.topic, tp.partition)

    async def _handle(self, tp: TP, event: faust.EventT[Any]) -> None:
        failures = 0
        while True:
            try:
                await self._handler(event, failures > 0)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self._on_failure()
                delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1))
                log.exception(
                    "lane failed on a command; the same command is handed over again in "
                    "%.0f s (the lane keeps its place: nothing after it runs first) "
                    "topic=%s partition=%s offset=%s failures=%d",
                    delay,
                    tp.topic,
                    tp.partition,
                    event.message.offset,
                    failures,
                )
                # between attempts: a release (revocation, stop) cuts the wait at once
                await wait_between_attempts(delay)

    async def release(self, tps: Iterable[TP], *, grace: float) -> None:
        """Stop the lanes of ``tps``: drop what is queued, let the command in progress finish
        (at most ``grace`` seconds), then cancel. A command waiting between two attempts (a
        retry's backoff, a 429's Retry-After) has nothing on its way: it is cut without
        waiting, or a rebalance (a takeover) would wait out its backoff."""
        lanes = [(tp, lane) for tp in tps if (lane := self._lanes.pop(TP(*tp), None))]
        for tp, lane in lanes:
            _drop(lane.queue)
            self._paused.discard(tp)

        def writing() -> list[_Lane]:
            return [
                lane
                for _, lane in lanes
                if not lane.idle.is_set() and not between_attempts(lane.task)
            ]

        if busy := writing():
            log.info("lanes finishing the commands in progress count=%d", len(busy))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    # Idle and between-attempts have no event of their own: poll.
                    while writing():  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
        for tp, lane in lanes:
            if not lane.idle.is_set():
                _log_cut(tp, grace, between=between_attempts(lane.task))
            if lane.task is not None:
                lane.task.cancel()
        tasks = [lane.task for _, lane in lanes if lane.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    def partitions(self) -> list[TP]:
        """The partitions with a lane."""
        return list(self._lanes)

    def backlog(self) -> int:
        return sum(lane.queue.qsize() for lane in self._lanes.values())

    async def stop(self, *, grace: float = 0.0) -> None:
        await self.release(list(self._lanes), grace=grace)

    def release_on_revocation(self, revocations: Revocations, topic: str, grace: float) -> None:
        """Release this topic's revoked partitions before they are committed and their next
        owners start (``Revocations``)."""

        async def release_revoked(revoked: set[Any]) -> None:
            await self.release([tp for tp in revoked if tp.topic == topic], grace=grace)

        revocations.before_commit(release_revoked)

    async def feed(
        self,
        app: faust.App,
        stream: faust.StreamT[Any],
        received: Callable[[faust.EventT[Any]], bool],
        *,
        grace: float,
    ) -> None:
        """An agent's body: every event its ``received`` check lets through goes to its
        partition's lane, taking its place in the ack order as it is read; when the agent
        stops, what runs gets ``grace`` and the partitions are settled."""
        try:
            async for event in cast(faust.Stream[bytes], stream).noack().events():
                if not received(event):
                    continue
                expect(event)
                self.submit(event)
        finally:
            # A worker's stop is released and committed by Revocations before this runs; an
            # agent stopped on its own (its supervisor restarting it) leaves nothing running.
            tps = list(self.partitions())
            await self.stop(grace=grace)
            await settle(app, tps)


def _log_cut(tp: TP, grace: float, *, between: bool) -> None:
    if between:
        log.info(
            "lane cut between two attempts of a command; its next owner runs it as possibly "
            "executed topic=%s partition=%s",
            tp.topic,
            tp.partition,
        )
    else:
        log.warning(
            "lane cut after %.0f s with a command in progress; its next owner runs it as "
            "possibly executed topic=%s partition=%s",
            grace,
            tp.topic,
            tp.partition,
        )


def _drop(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()
