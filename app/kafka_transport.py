"""Faust's aiokafka transport, with its fetch loop handing a record over without four tasks.

Faust's fetcher (``faust.transport.consumer.Consumer._drain_messages``) passes each fetched
record to the streams with::

    await self.wait_first(callback(message), self.suspend_flow.wait())

``wait_first`` (mode's ``Service.wait_first``) wraps the callback, the suspend event, and the
consumer's stopped and crashed events in four tasks and an ``asyncio.wait``, for every record:
about 60-80 microseconds of a 2-core machine's CPU, the largest single cost of reading a
record through Faust (``docs/performance.md``). Nearly always the callback does not wait at
all (flow control is open, the producer's buffer is low, the stream's queue has room), so
this consumer runs it at once, like a task's first step, and falls back to Faust's
``wait_first`` with the rest of the callback only when it does wait. Same outcomes: a
callback that finishes in its first step finishes there under ``wait_first`` too (its task
runs first), and one that has to wait is cut, as before, when the flow is suspended or the
consumer stops.

It also reads again the changelog records Faust's ``getmany`` throws away. ``getmany`` takes
a batch of records from aiokafka, which counts them as consumed (its position moves past
them), and then discards the batch, or what is left of it, when the flow is suspended (a
rebalance) or the generation changed; it leaves their re-reading to ``perform_seek``, a seek
to the committed offsets. A changelog partition has none, so its position stays past records
no table ever got. The table recovery's seek usually comes later and repairs that; when the
discarded batch was fetched after that seek (the fetch and the recovery race on a
takeover), the active changelogs sit at their end with records missing and the recovery
waits for ever: caught in the repro loop of the kill -9 takeover tests, the recovery stall
watch's account read "aiokafka position = highwater, nothing buffered, Faust's read offset
none" on every stalled partition (``app.recovery_watch``). So every changelog record drawn
from aiokafka either reaches the fetch loop or its partition is sought back to it. A record
read twice is harmless there: the recovery applies a changelog offset once.

And it waits for a full stream buffer to drain rather than for a second. When every assigned
partition's stream buffer is under pressure (``Consumer.on_buffer_full`` took each out of the
fetch), Faust's ``_wait_next_records`` sleeps one second before it looks again, however soon
the streams drain; with the hand-over above the fetcher fills a buffer in one go, so a
backlog paused the fetch about once per batch it read: ``bench.faust_floor``'s reader spent
16 of its 23 s in those sleeps (``docs/performance.md``). This consumer waits for the first
partition the streams take back in (``on_buffer_drop``), still at most that second.

And it tells which partitions' committed offsets are known (``committed_at_assignment``).
Faust's record of them (``_committed_offset``) is emptied for partitions revoked and filled
again only at the end of ``perform_seek``, which the table recovery makes after it resumed the
partitions, with the flow often already open: aiokafka looks the committed offsets up itself
and fetches from them, so records can reach the agents before Faust knows where reading
started, and a committed offset read as "none" turned the first of them into a record past a
gap from 0 (``app.agents.positions``). A lookup that fails outside a rebalance is made again
(``LOOKUP_AGAIN_S``): until one succeeds the agents hold the partitions' records back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, NamedTuple, cast

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from mode.services import WaitResults
from mode.utils.times import Seconds, want_seconds

from app.agents.acks import acks_in_order, commit_offset
from app.conductor import Conductor
from app.fetch_fill import fill_fetches

__all__ = [
    "Consumer",
    "ConsumerThread",
    "Missed",
    "Transport",
    "changelog_records_missed",
    "position_now",
    "seek_unmoved",
    "use_eager_fetch",
]


async def resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Carry on, as its task would, a coroutine that ran until it first had to wait
    (``coro.send(None)`` gave ``waiting_on``: a future, or None for a bare yield)."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            elif asyncio.isfuture(waiting_on):
                # What a task does with a future its coroutine yields: clear the flag the
                # future set when it was yielded, then wait for it (here, by awaiting it).
                waiting_on._asyncio_future_blocking = False
                await waiting_on
            else:
                raise RuntimeError(f"a coroutine yielded {waiting_on!r}, not a future")
        except BaseException as exc:
            if waiting_on is None or not waiting_on.done():
                # This task was cancelled while the future was not: pass it on to the
                # coroutine, as a task hands a cancellation to the coroutine it runs.
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            # The future is done (with a result, an error or cancelled): the coroutine reads
            # it itself, as it would have.
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value


class Consumer(driver.Consumer):
    #: the longest the fetch waits for a full stream buffer to drain (Faust's sleep there)
    BUFFER_WAIT_S = 1.0
    #: a lookup of the committed offsets that failed outside a rebalance is made again after
    #: this long, each given as long as a broker request
    LOOKUP_AGAIN_S = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the batch ``getmany`` last iterated (aiokafka's records by partition) and its
        #: generation; where each changelog partition of it stood once it was taken from
        #: aiokafka (set by ``ConsumerThread``); the last offset of each it handed on
        #: (``_to_message``, which getmany calls for every record it hands on)
        self._batch: Mapping[Any, Sequence[Any]] = {}
        self._batch_generation = -1
        self.drained_to: dict[Any, int] = {}
        self._reached: dict[Any, int] = {}
        #: the tables' changelog topics (fixed once the tables are registered, before the
        #: first fetch)
        self.changelog_topics: frozenset[str] = frozenset()
        #: set when a stream buffer under pressure drains (a partition fetched again)
        self._buffer_drained = asyncio.Event()
        #: where reading each partition of the assignment starts, as ``perform_seek`` looked
        #: it up: its committed offset, or its log's start with nothing committed (a
        #: changelog partition's: 0); revocations and assignments seen (a lookup made
        #: across one is of another assignment); the count at the last lookup of the committed
        #: offsets, at the last lookup done (log starts too), and the one a retry runs for
        self._committed_at_assignment: dict[TP, int] = {}
        self._rebalances = 0
        self._committed_looked_up_in = -1
        self._looked_up_in = -1
        self._looking_again_for = -1

    def committed_at_assignment(self, tp: TP) -> int | None:
        """Where reading ``tp`` starts in this assignment: its committed offset as
        ``perform_seek`` looked it up, or with nothing committed its log's start (where
        ``auto_offset_reset="earliest"`` reads from, and where the lookup seeks it), or None
        before that lookup."""
        return self._committed_at_assignment.get(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._rebalances += 1
        try:
            await super().on_partitions_revoked(revoked)
        finally:
            # Only now: the revocation's commit (``app.agents.acks.Revocations``, called in
            # there) may ask where the group stood.
            for tp in revoked:
                self._committed_at_assignment.pop(TP(tp.topic, tp.partition), None)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._rebalances += 1
        self._committed_at_assignment = {}  # a partition kept is looked up again too
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        rebalances = self._rebalances
        try:
            await self._look_up(rebalances)
        except BaseException:
            # The recovery cancels a seek that takes longer than a broker request and, when
            # no rebalance is the cause, never makes it again: the partitions would be held
            # back for good.
            if self._rebalances == rebalances and not self._stopping:
                self._look_up_again(rebalances)
            raise

    async def _look_up(self, rebalances: int) -> None:
        """Faust's ``perform_seek``, noting where each partition's reading starts when no
        rebalance came meanwhile: its committed offset, or its log's start.

        Faust seeks only partitions with a committed offset; their starts are noted in the
        same step as its seek, so their records are taken from the first one. One with
        nothing committed is then sought to its log's start here, as Faust seeks the others:
        aiokafka may have fetched past its first records before this lookup, and the agents
        dropped them (``app.agents.read_order``, ``EARLY``). The seek brings them again, as
        Faust's does for a committed partition (a batch the fetch loop is still handing out
        past either seek shows as a gap, read again by a rewind). And a log whose first
        records retention removed starts past 0: its first record is where reading starts,
        not one past a gap. Changelog partitions are left to the tables' recovery. A lookup
        cut short after Faust's seek is made again for the partitions still unknown only:
        Faust's seek again would send the others back over records already taken."""
        if self._committed_looked_up_in != rebalances:
            changelogs = self.app.tables.changelog_topics
            tps = self.assignment()
            await super().perform_seek()
            if self._rebalances != rebalances:
                return
            committed = self._committed_offset  # just set from the lookup
            self._committed_at_assignment.update(
                {
                    TP(tp.topic, tp.partition): int(offset or 0)
                    for tp in tps
                    if (offset := committed.get(tp)) is not None or tp.topic in changelogs
                }
            )
            self._committed_looked_up_in = rebalances
        known = self._committed_at_assignment
        uncommitted = [tp for tp in self.assignment() if TP(tp.topic, tp.partition) not in known]
        if uncommitted:
            earliest = await self.earliest_offsets(*uncommitted)
            if self._rebalances != rebalances:
                return
            log_starts = {tp: int(earliest.get(tp) or 0) for tp in uncommitted}
            await self.seek_wait(log_starts)
            if self._rebalances != rebalances:
                return
            known.update({TP(tp.topic, tp.partition): at for tp, at in log_starts.items()})
        self._looked_up_in = rebalances

    @property
    def _stopping(self) -> bool:
        return bool(self.should_stop or self.app.should_stop)

    def _look_up_again(self, rebalances: int) -> None:
        if self._looking_again_for != rebalances:  # one retry loop at a time
            self._looking_again_for = rebalances
            self.add_future(self._looking_up_again(rebalances))

    async def _looking_up_again(self, rebalances: int) -> None:
        timeout = want_seconds(self.app.conf.broker_request_timeout)
        while True:
            await asyncio.sleep(self.LOOKUP_AGAIN_S)
            if self._rebalances != rebalances or self._stopping:
                return  # the next assignment's recovery looks them up
            if self._looked_up_in == rebalances or not self.assignment():
                return  # looked up meanwhile (another perform_seek), or nothing to look up
            try:
                async with asyncio.timeout(timeout):
                    await self._look_up(rebalances)
            except Exception as exc:
                self.log.warning(
                    "committed offsets not looked up (%r): the agents hold their partitions' "
                    "records back; trying again in %.0f s",
                    exc,
                    self.LOOKUP_AGAIN_S,
                )
                continue
            self.log.info("committed offsets looked up again after a failed lookup")
            return

    def _new_offset(self, tp: TP) -> int | None:
        # Faust's commit counts the offsets of a gap it saw as acked once an ack passes the
        # gap's start (``_add_gap``: for offsets a compacted log or a transaction marker
        # left out). Records Faust itself dropped make such a gap too: those of a partition
        # paused partway through a fetched batch (a lane behind), read again by a rewind
        # (app.agents.positions). A commit then passed events still in a lane, and a crash,
        # or the commit of a stop after our revocation's (Faust's consumer commits once more
        # as it stops), lost them. So a topic whose events the agents ack in order is
        # committed where that order stands, and not at all when nothing was acked since its
        # assignment or revocation. Faust's own arithmetic still runs: it trims its records.
        offset = super()._new_offset(tp)
        if acks_in_order(tp.topic):
            return commit_offset(tp.topic, tp.partition)
        return offset

    def on_buffer_drop(self, tp: TP) -> None:
        # Faust makes a drained partition active again even when it was paused meanwhile (a
        # lane behind: app.agents.lanes), undoing the pause for good: the lane, thinking
        # it paused, would never pause it again, and its queue would grow for as long as
        # its platform is down. A paused partition stays out until it is resumed.
        paused = tp in self._paused_partitions
        super().on_buffer_drop(tp)
        if paused:
            self._get_active_partitions().discard(tp)
        self._buffer_drained.set()

    async def _held_back_by_full_buffers(self) -> bool:
        """While the streams' full buffers hold back every assigned partition, wait for one
        to drain, at most ``BUFFER_WAIT_S`` (Faust's sleep); True if none did."""
        if self.app.client_only or not self.flow_active or not self._buffered_partitions:
            return False  # Faust's own wait: for the flow to resume (a rebalance) first
        if self._get_active_partitions():
            return False
        self._buffer_drained.clear()
        await self.wait_first(self._buffer_drained.wait(), timeout=self.BUFFER_WAIT_S)
        return not self._get_active_partitions()

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's)
        # getmany is done with the previous batch (the fetch loop asks for the next only
        # then): read again what it set aside of the changelogs.
        batch, reached, drained_to = self._batch, self._reached, self.drained_to
        self._batch, self._reached, self.drained_to = {}, {}, {}
        if drained_to and self._batch_generation == self.app.consumer_generation_id:
            missed = changelog_records_missed(batch, reached, drained_to)
            if missed:
                await self._read_again(missed)
        if not self.changelog_topics:  # once: the tables are registered before any fetch
            self.changelog_topics = frozenset(self.app.tables.changelog_topics)
        if await self._held_back_by_full_buffers():
            return {}, set()  # what Faust's returns after its sleep: the fetch loop asks again
        records, active = await super()._wait_next_records(timeout)
        self._batch = records or {}
        self._batch_generation = self.app.consumer_generation_id
        return records, active

    def _to_message(self, tp: TP, record: Any) -> Any:
        if tp.topic in self.changelog_topics:
            self._reached[tp] = record.offset
        return super()._to_message(tp, record)

    async def _read_again(self, missed: dict[TP, Missed]) -> None:
        try:
            sought = await self._seek_back(missed)
        except IllegalStateError as exc:
            # no longer assigned (a rebalance took them): their next owner reads them
            self.log.info("changelog partitions not read again, no longer ours: %r", exc)
            return
        except Exception as exc:  # the fetch loop must go on: the recovery watch re-reads
            self.log.warning(
                "changelog records set aside could not be sought back to (%r); a table "
                "recovery waiting for them re-reads them after its stall time "
                "(app.faust_recovery)",
                exc,
            )
            return
        for tp, offset in sought.items():
            # as Faust's own seek_wait: its fetch loop drops records below a read offset
            if offset > 0:
                self._read_offset[tp] = offset
            else:
                self._read_offset.pop(tp, None)
        if sought:
            self.log.info(
                "changelog records Faust's fetch set aside (flow suspended) are read again: %s",
                ", ".join(f"{tp.topic}[{tp.partition}] from {o}" for tp, o in sought.items()),
            )

    async def _seek_back(self, missed: dict[TP, Missed]) -> dict[TP, int]:
        """``seek_unmoved`` on the consumer's own thread, where aiokafka's state lives."""
        thread = cast(Any, self)._thread
        sought: dict[TP, int] = await thread.call_thread(
            seek_unmoved, thread._ensure_consumer(), missed
        )
        return sought

    # The signature is mode's (Service.wait_first), overridden: its timeout stays a parameter.
    async def wait_first(
        self,
        *coros: Any,
        timeout: Seconds = None,  # type: ignore[assignment]  # noqa: ASYNC109
    ) -> WaitResults:
        # Only the fetch loop's call has this shape (a coroutine, then the suspend event's
        # wait, no timeout); anything else is Faust's own wait_first.
        if len(coros) != 2 or timeout is not None or not asyncio.iscoroutine(coros[0]):
            return await super().wait_first(*coros, timeout=timeout)
        callback, other = coros
        try:
            waiting_on = callback.send(None)  # its first step, on this task
        except BaseException as ended:  # done (StopIteration) or failed in its first step
            if asyncio.iscoroutine(other):
                other.close()  # never started: nothing to wait for, no "never awaited"
            if isinstance(ended, StopIteration):
                return WaitResults([callback], [ended.value], False)
            raise
        return await super().wait_first(resume(callback, waiting_on), other)


class Missed(NamedTuple):
    """Records of a batch set aside: the first not handed on, and where aiokafka's position
    stood right after it handed out the batch (the next record it would hand out)."""

    first: int
    drained_to: int


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, asking for fuller fetches while records pour in
    (``app.fetch_fill``), and noting after each batch it takes from aiokafka
    where each changelog partition of it stands (``Consumer.drained_to``): on this thread,
    right after the batch, so that a later seek shows as a moved position."""

    async def on_start(self) -> None:
        await super().on_start()
        # aiokafka builds the fetcher in start(): fuller fetches while records pour in
        fill_fetches(self._consumer._fetcher)  # type: ignore[union-attr]

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109 (Faust's)
        max_records: int | None = None,
    ) -> Any:
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        ours = cast(Consumer, self.consumer)
        changelogs = ours.changelog_topics
        drained_to: dict[Any, int] = {}
        for tp in records or ():
            if tp.topic in changelogs:
                position = position_now(consumer, tp)
                if position is not None:
                    drained_to[tp] = position
        ours.drained_to = drained_to
        return records


def position_now(kafka: Any, tp: Any) -> int | None:
    """aiokafka's position of ``tp`` (the next record it hands out), read without waiting:
    None while it has none (being reset) or is not assigned. ``AIOKafkaConsumer.position``
    waits for a reset, and raises for a partition a rebalance just took; the fetch must do
    neither."""
    try:
        state = kafka._subscription.subscription.assignment.state_value(tp)
    except AttributeError:  # no assignment at all (a rebalance under way)
        return None
    if state is None or not state.has_valid_position:
        return None
    return int(state.position)


def changelog_records_missed(
    batch: Mapping[Any, Sequence[Any]],
    reached: Mapping[Any, int],
    drained_to: Mapping[Any, int],
) -> dict[TP, Missed]:
    """For each changelog partition of ``batch`` (aiokafka's records, by partition; its
    changelog partitions are those of ``drained_to``, where each stood after the batch) with
    a record past the last offset handed on (``reached``): the first such offset, where the
    partition must be read again from. Everything before it was handed on, or came before
    the batch (the position aiokafka fetched it from)."""
    missed: dict[TP, Missed] = {}
    for tp, records in batch.items():
        if not records or tp not in drained_to:
            continue
        last = reached.get(tp)
        for record in records:
            if last is None or record.offset > last:
                missed[tp] = Missed(record.offset, drained_to[tp])
                break
    return missed


async def seek_unmoved(kafka: Any, missed: Mapping[TP, Missed]) -> dict[TP, int]:
    """Seek each partition of ``missed`` back to its first record set aside, if it still
    stands where the batch left it. One moved since was sought by someone who knew where to
    read from (the table recovery's seek to its last applied record); seeking it back would
    read again what the table holds, the whole changelog for a RocksDB table on a restarted
    worker. ``kafka`` is aiokafka's consumer; run on its thread. Returns the partitions
    sought and their offsets."""
    sought: dict[TP, int] = {}
    for tp, records in missed.items():
        if position_now(kafka, tp) == records.drained_to:
            kafka.seek(tp, records.first)
            sought[tp] = records.first
    return sought


class Transport(driver.Transport):
    Consumer = Consumer
    #: hands a record to its stream's queue without awaiting when nothing has to wait
    Conductor = Conductor


def use_eager_fetch(app: faust.App) -> None:
    """Make ``app`` consume through this transport (before any topic is declared)."""
    app.transport = Transport(app.conf.broker_consumer, app)
