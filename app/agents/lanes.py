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

**Live traffic first.** Each partition has two lanes: commands a backfill caused
(``SyncCommand.backfill``) run in the partition's backfill lane, which takes its next command
only while every live lane of the worker is empty and idle (at most ``backfill_wait`` seconds
per command, so a worker that is never quiet still makes progress). A live reply therefore
never queues behind a backfilled ticket's create in its partition, and backfill commands fill
the pauses. Order per link holds across the two: a command goes to the lane that already has
a command of its link (the commands topic is keyed by link), so a live change to a
backfilled record waits for the backfill's create, and a backfill command for a record with
live commands pending runs behind them. Acks stay in offset order per partition
(``app.agents.acks.expect``): a backfill command waiting holds the partition's commit back,
not its live commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

import faust
from faust.types import TP

from app.agents.acks import Revocations, expect, settle
from connectors.base.retry import between_attempts, wait_between_attempts

__all__ = ["Handler", "Lanes", "PartitionControl"]

log = logging.getLogger(__name__)

#: seconds between two attempts at an event whose handler raised, doubling up to the cap
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


class PartitionControl(Protocol):
    def pause_partitions(self, tps: Iterable[TP]) -> None: ...
    def resume_partitions(self, tps: Iterable[TP]) -> None: ...
    def assignment(self) -> set[TP]: ...


#: seconds a backfill command waits at most for the live lanes to be empty
BACKFILL_WAIT_S = 30.0

#: events ``feed`` takes from its stream at once: decoding them holds the loop (about 30 µs
#: each), so no more than a lane's default depth
FEED_MAX = 64

#: what a lane's ``read`` makes of an event (the sinks: the decoded command)
T = TypeVar("T")

#: ``handler(event, item, again)``: ``item`` is what ``Lanes``' ``read`` made of the event,
#: ``again`` is True when an earlier attempt at it raised
Handler = Callable[[faust.EventT[Any], T, bool], Awaitable[None]]


def _live(item: Any) -> bool:
    return False


@dataclass
class _Lane:
    #: each event with what ``read`` made of it, so nothing reads it twice
    queue: asyncio.Queue[tuple[faust.EventT[Any], Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    #: set while no event is being handled
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: link (the event's key) → its events queued or running here
    links: Counter[Any] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.idle.set()

    def busy(self) -> bool:
        return not self.idle.is_set() or not self.queue.empty()


@dataclass
class _Partition:
    live: _Lane = field(default_factory=_Lane)
    backfill: _Lane = field(default_factory=_Lane)

    def lanes(self) -> tuple[_Lane, _Lane]:
        return self.live, self.backfill

    def backlog(self) -> int:
        return self.live.queue.qsize() + self.backfill.queue.qsize()

    def lane_for(self, link: Any, backfill: bool) -> _Lane:
        """The lane already holding ``link``'s commands, else the command's own kind's."""
        if self.backfill.links[link] or (backfill and not self.live.links[link]):
            return self.backfill
        return self.live


class Lanes(Generic[T]):
    """``read`` turns an event into what its handler and ``is_backfill`` take (the sinks
    decode the command there), once per event: as it is submitted, not again in the lane."""

    def __init__(
        self,
        handler: Handler[T],
        control: Callable[[], PartitionControl],
        *,
        read: Callable[[faust.EventT[Any]], T],
        depth: int = 64,
        on_failure: Callable[[], None] = lambda: None,
        is_backfill: Callable[[T], bool] = _live,
        backfill_wait: float = BACKFILL_WAIT_S,
    ) -> None:
        self._handler = handler
        self._control = control
        self._read = read
        self._depth = depth
        self._on_failure = on_failure
        self._is_backfill = is_backfill
        self._backfill_wait = backfill_wait
        self._partitions: dict[TP, _Partition] = {}
        self._paused: set[TP] = set()
        #: set while every live lane is empty and idle: the backfill lanes' turn
        self._live_quiet = asyncio.Event()
        self._live_quiet.set()

    def submit(self, event: faust.EventT[Any]) -> None:
        # Faust's own TP: messages from the aiokafka driver carry aiokafka's TopicPartition,
        # and faust's resume_partitions puts what it is given into its active set as it is,
        # where its fetcher asserts they are TPs (the worker stopped on the first resume).
        tp = TP(event.message.tp.topic, event.message.tp.partition)
        part = self._partitions.get(tp)
        if part is None:
            part = self._partitions[tp] = _Partition()
            for lane in part.lanes():
                kind = "backfill" if lane is part.backfill else "live"
                lane.task = asyncio.create_task(
                    self._run(tp, part, lane), name=f"lane-{tp.topic}-{tp.partition}-{kind}"
                )
            log.info(
                "lane opened topic=%s partition=%s first_offset=%s",
                tp.topic,
                tp.partition,
                event.message.offset,
            )
        item = self._read(event)
        lane = part.lane_for(_link(event), self._is_backfill(item))
        lane.links[_link(event)] += 1
        lane.queue.put_nowait((event, item))
        self._live_changed()
        if part.backlog() >= self._depth and tp not in self._paused:
            self._paused.add(tp)
            self._control().pause_partitions([tp])
            log.info(
                "lane paused topic=%s partition=%s backlog=%s",
                tp.topic,
                tp.partition,
                part.backlog(),
            )

    def _live_changed(self) -> None:
        if any(part.live.busy() for part in self._partitions.values()):
            self._live_quiet.clear()
        else:
            self._live_quiet.set()

    async def _live_first(self) -> None:
        """Wait until no live command is queued or running (at most ``backfill_wait``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._backfill_wait):
                while not self._live_quiet.is_set():
                    await self._live_quiet.wait()

    async def _run(self, tp: TP, part: _Partition, lane: _Lane) -> None:
        while True:
            event, item = await lane.queue.get()
            if lane is part.backfill:
                await self._live_first()  # the lane stays idle: nothing is on its way
            lane.idle.clear()
            try:
                await self._handle(tp, event, item)
            finally:
                lane.links[_link(event)] -= 1
                if lane.links[_link(event)] <= 0:
                    del lane.links[_link(event)]
                lane.idle.set()
                self._live_changed()
            if tp in self._paused and part.backlog() <= self._depth // 2:
                self._paused.discard(tp)
                self._control().resume_partitions([tp])
                log.info("lane resumed topic=%s partition=%s", tp.topic, tp.partition)

    async def _handle(self, tp: TP, event: faust.EventT[Any], item: T) -> None:
        failures = 0
        while True:
            try:
                await self._handler(event, item, failures > 0)
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
        parts = [(TP(*tp), part) for tp in tps if (part := self._partitions.pop(TP(*tp), None))]
        lanes = [(tp, lane) for tp, part in parts for lane in part.lanes()]
        for tp, lane in lanes:
            _drop(lane.queue)
            self._paused.discard(tp)
        self._live_changed()

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

    def busy_for(self, event: faust.EventT[Any]) -> bool:
        """Whether a lane of ``event``'s partition has anything queued or running: an event
        an agent handles beside its lanes, in order with theirs, must then go behind it."""
        # (the message's TopicPartition is a tuple equal to Faust's TP: no TP made per event)
        part = self._partitions.get(event.message.tp) if self._partitions else None
        return part is not None and (part.live.busy() or part.backfill.busy())

    def partitions(self) -> list[TP]:
        """The partitions with a lane."""
        return list(self._partitions)

    def backlog(self) -> int:
        return sum(part.backlog() for part in self._partitions.values())

    async def stop(self, *, grace: float = 0.0) -> None:
        paused = set(self._paused)
        await self.release(list(self._partitions), grace=grace)
        # An agent stopped on its own (its supervisor restarting it) would find partitions
        # its lanes paused still paused in the consumer, with nothing to resume them before
        # a rebalance (and Positions does not judge a paused partition): resume those still
        # assigned. A revocation's are Faust's to forget.
        control = self._control()
        if still := [tp for tp in paused if tp in control.assignment()]:
            control.resume_partitions(still)

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
        # What is queued is taken at once, never waiting for more (a lone command goes at
        # once): Faust's per-event step cost more than submitting the command
        # (``app.batch_stream``).
        batches = cast(faust.Stream[bytes], stream).noack_take(FEED_MAX, within=0.0)
        try:
            async for batch in batches:
                for event in cast(list[faust.EventT[Any]], batch):
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


def _link(event: faust.EventT[Any]) -> Any:
    """What orders commands: their key (a link and a target platform, ``streams.emit``)."""
    return getattr(event, "key", None)


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
