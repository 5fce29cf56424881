"""The fetch loop's hand-over (``app.kafka_transport``): a callback that does not wait is run
at once, one that waits is carried on exactly as its task would have carried it, and cut
when the suspend event comes first. Real Faust consumer objects (not started: the hand-over
needs no broker); the fetch loop itself runs in every Kafka test of the worker."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Mapping
from typing import Any, cast

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from app.agents import acks
from app.kafka_transport import (
    Consumer,
    Missed,
    changelog_records_missed,
    position_now,
    resume,
    seek_unmoved,
    use_eager_fetch,
)


def _consumer() -> Consumer:
    app = faust.App("eager-fetch-test", broker="kafka://127.0.0.1:1", autodiscover=False)
    use_eager_fetch(app)
    consumer = app.consumer  # built by the app as a worker's is, not started
    assert isinstance(consumer, Consumer)
    return consumer


async def test_a_callback_that_does_not_wait_runs_without_a_task() -> None:
    consumer = _consumer()
    suspend = asyncio.Event()
    ran: list[str] = []

    async def deliver() -> str:
        ran.append("delivered")
        return "ok"

    tasks_before = len(asyncio.all_tasks())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would warn
        result = await consumer.wait_first(deliver(), suspend.wait())
    assert ran == ["delivered"]
    assert (result.done and result.results, result.stopped) == (["ok"], False)
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_callback_that_waits_is_carried_on_to_its_end() -> None:
    consumer = _consumer()
    room = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def deliver() -> str:
        steps.append("first step")
        await room  # the stream's queue is full
        steps.append("put")
        await asyncio.sleep(0)
        return "ok"

    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), asyncio.Event().wait()))
    await asyncio.sleep(0.01)
    assert steps == ["first step"]
    assert not waiting.done()
    room.set_result(None)
    result = await waiting
    assert steps == ["first step", "put"]
    assert result.results == ["ok"]


async def test_a_waiting_callback_is_cut_when_the_flow_is_suspended() -> None:
    consumer = _consumer()
    suspend = asyncio.Event()
    cleaned: list[str] = []

    async def deliver() -> None:
        try:
            await asyncio.get_running_loop().create_future()  # never room
        finally:
            cleaned.append("cut")

    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), suspend.wait()))
    await asyncio.sleep(0.01)
    suspend.set()
    result = await waiting
    await asyncio.sleep(0)  # the cancelled task runs its finally
    assert result.results == [True]  # the suspend event's wait won
    assert cleaned == ["cut"]


async def test_errors_reach_the_callback_where_it_waits_and_the_caller() -> None:
    failing = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await failing
        except RuntimeError as exc:
            seen.append(str(exc))
            raise

    coro = deliver()
    waiting_on = coro.send(None)
    assert waiting_on is failing
    failing.set_exception(RuntimeError("broker gone"))
    with pytest.raises(RuntimeError, match="broker gone"):
        await resume(coro, waiting_on)
    assert seen == ["broker gone"]

    consumer = _consumer()

    async def fails_at_once() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await consumer.wait_first(fails_at_once(), asyncio.Event().wait())


# --- changelog records Faust's getmany sets aside -------------------------------------------
# Faust's own getmany runs here over a batch handed to it as aiokafka hands one (records by
# partition); only what needs a started aiokafka consumer is replaced: the fetch itself, the
# highwater it reads for a sensor, the seek to committed offsets it makes when the flow is
# suspended, and the seek back, which is recorded.

LINKS = TopicPartition("eager-fetch-test-links-changelog", 1)
RAW = TopicPartition("deskstream.raw", 1)


def _records(tp: TopicPartition, offsets: range) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(tp.topic, tp.partition, o, 0, 0, b"k", b"v", None, 1, 1, ()) for o in offsets
    ]


class _Fetches:
    """What the consumer's fetch returns, batch after batch (noting, as the consumer thread
    does, where each changelog partition stands after it), and the seeks back asked for."""

    def __init__(self, consumer: Consumer, *batches: dict[Any, list[Any]]) -> None:
        self.consumer = consumer
        self.batches = list(batches)
        self.seeks: list[dict[Any, Missed]] = []
        self.on_fetch: list[Any] = []
        consumer_any = cast(Any, consumer)
        consumer_any._getmany = self.getmany
        consumer_any._seek_back = self.seek_back
        consumer_any.highwater = lambda tp: 100
        consumer_any.perform_seek = self.perform_seek
        # Faust keeps its own TP type here; aiokafka's keys the batches (equal tuples)
        consumer_any._active_partitions = {TP(*LINKS), TP(*RAW)}

    async def getmany(self, active_partitions: Any, timeout: float) -> dict[Any, list[Any]]:  # noqa: ASYNC109
        for then in self.on_fetch:
            then()
        self.on_fetch.clear()
        batch = self.batches.pop(0) if self.batches else {}
        self.consumer.drained_to = {
            tp: records[-1].offset + 1
            for tp, records in batch.items()
            if tp.topic in self.consumer.changelog_topics
        }
        return batch

    async def seek_back(self, missed: dict[Any, Missed]) -> dict[Any, int]:
        """``seek_unmoved`` on the thread, every partition found where its batch left it."""
        self.seeks.append(dict(missed))
        return {tp: m.first for tp, m in missed.items()}

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets: a changelog partition has none."""


def _consumer_with_table() -> Consumer:
    consumer = _consumer()
    consumer.app.Table("links", default=int)  # its changelog is LINKS' topic
    consumer.resume_flow()
    return consumer


async def _drain(consumer: Consumer, *, suspend_after: int | None = None) -> list[int]:
    """One turn of Faust's fetch loop over the next batch: the offsets handed on."""
    handed: list[int] = []
    async for _, message in consumer.getmany(timeout=0.01):
        handed.append(message.offset)
        if suspend_after is not None and len(handed) == suspend_after:
            consumer.stop_flow()  # a rebalance starts while the batch is handed on
    return handed


async def test_a_changelog_batch_set_aside_by_a_suspended_flow_is_read_again() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(
        consumer, {LINKS: _records(LINKS, range(0, 5)), RAW: _records(RAW, range(7, 9))}
    )
    # The flow is suspended while the fetch is out (the takeover's race): Faust discards it.
    fetches.on_fetch.append(consumer.stop_flow)
    assert await _drain(consumer) == []
    consumer.resume_flow()
    assert await _drain(consumer) == []  # the next fetch: the batch set aside is sought back
    # the stream partition is Faust's (a seek to its committed offset)
    assert fetches.seeks == [{LINKS: Missed(first=0, drained_to=5)}]
    assert consumer._read_offset.get(LINKS) is None  # Faust's fetch loop drops nothing of it


async def test_a_batch_cut_short_is_read_again_from_its_first_record_not_handed_on() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(consumer, {LINKS: _records(LINKS, range(10, 16))})
    assert await _drain(consumer, suspend_after=2) == [10, 11]
    consumer.resume_flow()
    await _drain(consumer)
    assert fetches.seeks == [{LINKS: Missed(first=12, drained_to=16)}]
    assert consumer._read_offset[LINKS] == 12


async def test_a_batch_handed_on_whole_or_from_an_older_generation_is_not_sought() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(
        consumer, {LINKS: _records(LINKS, range(0, 3))}, {LINKS: _records(LINKS, range(3, 6))}
    )
    assert await _drain(consumer) == [0, 1, 2]
    fetches.on_fetch.append(consumer.stop_flow)
    assert await _drain(consumer) == []  # set aside...
    consumer.app.consumer_generation_id += 1  # ...but a rebalance since: its recovery seeks
    consumer.resume_flow()
    await _drain(consumer)
    assert fetches.seeks == []


def test_the_first_record_not_handed_on_is_where_reading_starts_again() -> None:
    batch = {LINKS: _records(LINKS, range(4, 9)), RAW: _records(RAW, range(0, 3))}
    drained = {LINKS: 9}  # the batch's changelog partitions, where aiokafka stood after it
    assert changelog_records_missed(batch, {}, drained) == {LINKS: Missed(4, 9)}
    assert changelog_records_missed(batch, {LINKS: 6}, drained) == {LINKS: Missed(7, 9)}
    assert changelog_records_missed(batch, {LINKS: 8}, drained) == {}
    assert changelog_records_missed({LINKS: []}, {}, drained) == {}


class _Aiokafka:
    """aiokafka's consumer as ``seek_unmoved`` and ``position_now`` use it: its own
    subscription state (positions), and a seek that moves it as ``Fetcher.seek_to`` does."""

    def __init__(self, positions: dict[Any, int | None]) -> None:
        self._subscription = SubscriptionState()
        self._subscription.assign_from_user(set(positions))
        for tp, offset in positions.items():
            if offset is not None:
                self._subscription.seek(tp, offset)
        self.seeks: list[tuple[Any, int]] = []

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._subscription.seek(tp, offset)


async def test_only_a_partition_still_where_its_batch_left_it_is_sought_back() -> None:
    other = TopicPartition(LINKS.topic, 2)
    resetting = TopicPartition(LINKS.topic, 3)
    # LINKS stands where the batch left it; the recovery sought `other` since, to where its
    # table's last applied record is (a RocksDB table on a restarted worker: offset 1000);
    # `resetting` has no position now (a reset under way)
    kafka = _Aiokafka({LINKS: 16, other: 1000, resetting: None})
    missed = {LINKS: Missed(12, 16), other: Missed(0, 500), resetting: Missed(0, 3)}
    assert await seek_unmoved(kafka, missed) == {LINKS: 12}
    assert kafka.seeks == [(LINKS, 12)]
    assert position_now(kafka, LINKS) == 12


async def test_a_position_is_read_without_waiting_or_raising() -> None:
    kafka = _Aiokafka({LINKS: 7, RAW: None})
    assert position_now(kafka, LINKS) == 7
    assert position_now(kafka, RAW) is None  # being reset: aiokafka's position() would wait
    assert position_now(kafka, TopicPartition("gone", 0)) is None  # not assigned: no raise
    kafka._subscription.unsubscribe()  # a rebalance under way: no assignment at all
    assert position_now(kafka, LINKS) is None


@pytest.mark.parametrize(
    ("error", "level"),
    [(IllegalStateError("No current assignment"), logging.INFO), (TimeoutError(), logging.WARNING)],
)
async def test_a_seek_back_that_fails_is_told_and_the_fetch_loop_goes_on(
    error: Exception, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(
        consumer, {LINKS: _records(LINKS, range(0, 2))}, {RAW: _records(RAW, range(3, 4))}
    )
    fetches.on_fetch.append(consumer.stop_flow)
    assert await _drain(consumer) == []
    consumer.resume_flow()

    async def failing_seek(missed: dict[Any, Missed]) -> dict[Any, int]:
        raise error

    cast(Any, consumer)._seek_back = failing_seek
    with caplog.at_level(logging.INFO):
        assert await _drain(consumer) == [3]  # the next batch still comes
    told = [
        r
        for r in caplog.records
        if "not read again" in r.getMessage() or "could not be sought" in r.getMessage()
    ]
    assert [r.levelno for r in told] == [level]


def _held_back(consumer: Consumer) -> None:
    """Every assigned partition taken out of the fetch: its stream buffer is under pressure
    (what Faust's ``on_buffer_full`` does as a stream's queue fills)."""
    for tp in (TP(*LINKS), TP(*RAW)):
        consumer.on_buffer_full(tp)
    assert not consumer._get_active_partitions()


async def test_a_fetch_held_back_by_full_buffers_resumes_when_a_stream_drains() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(consumer, {RAW: _records(RAW, range(3))})
    _held_back(consumer)
    cast(Any, consumer).BUFFER_WAIT_S = 3600.0  # Faust's sleep, that long, would hang here
    asyncio.get_running_loop().call_later(0.05, consumer.on_buffer_drop, TP(*RAW))
    async with asyncio.timeout(30):
        records, active = await consumer._wait_next_records(timeout=0.01)
    assert (records, active) == ({RAW: _records(RAW, range(3))}, {TP(*RAW)})
    assert not fetches.batches  # fetched, not slept through


async def test_a_fetch_held_back_with_nothing_drained_asks_again_after_its_wait() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(consumer, {RAW: _records(RAW, range(3))})
    _held_back(consumer)
    cast(Any, consumer).BUFFER_WAIT_S = 0.05
    assert await consumer._wait_next_records(timeout=0.01) == ({}, set())
    assert fetches.batches  # nothing fetched: no partition was active
    consumer.on_buffer_drop(TP(*LINKS))
    records, active = await consumer._wait_next_records(timeout=0.01)
    assert (records, active) == ({RAW: _records(RAW, range(3))}, {TP(*LINKS)})


async def test_a_fetch_with_a_partition_still_active_does_not_wait() -> None:
    consumer = _consumer_with_table()
    fetches = _Fetches(consumer, {RAW: _records(RAW, range(3))})
    consumer.on_buffer_full(TP(*LINKS))  # one held back, the other still fetched
    cast(Any, consumer).BUFFER_WAIT_S = 3600.0
    async with asyncio.timeout(30):
        records, active = await consumer._wait_next_records(timeout=0.01)
    assert (records, active) == ({RAW: _records(RAW, range(3))}, {TP(*RAW)})
    assert not fetches.batches


def test_a_partition_paused_while_its_buffer_was_full_stays_paused_when_it_drains() -> None:
    # A lane behind pauses its partition (app.agents.lanes); Faust's drop of the buffer
    # pressure made it active again, and the lane never paused it again.
    consumer = _consumer_with_table()
    raw, links = TP(*RAW), TP(*LINKS)
    consumer.on_buffer_full(raw)
    consumer.on_buffer_full(links)
    consumer.pause_partitions([raw])
    consumer.on_buffer_drop(raw)
    consumer.on_buffer_drop(links)
    assert consumer._get_active_partitions() == {links}
    assert not consumer._buffered_partitions  # nothing left held back by the buffers
    consumer.resume_partitions([raw])
    assert consumer._get_active_partitions() == {links, raw}


async def test_a_commit_says_where_the_agents_acked_in_order_and_nothing_once_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Records Faust dropped (a partition paused partway through a fetched batch) become a
    # gap in Faust's commit arithmetic, counted as acked once an ack passes its start; read
    # again by a rewind, 105..107 acked, 108 still in a lane: the commit must stay at 108.
    consumer = _consumer_with_table()
    tp = TP(*RAW)
    consumer._committed_offset[tp] = 105
    await consumer._add_gap(tp, 106, 110)
    for acked in (105, 106, 107):  # what Faust's ack of each does
        consumer._acked[tp].append(acked)
        consumer._acked_index[tp].add(acked)
    monkeypatch.setattr(acks._order, "topics", {tp.topic})
    monkeypatch.setitem(acks._order.acked_through, (tp.topic, tp.partition), 108)

    def timer_commits() -> list[int]:
        """Faust's commit timer, five times, each commit noted as Faust notes it."""
        commits = []
        for _ in range(5):
            offset = consumer._new_offset(tp)
            if offset is not None and consumer._should_commit(tp, offset):
                commits.append(offset)
                consumer._committed_offset[tp] = offset
        return commits

    assert timer_commits() == [108]  # Faust alone: 107, 108, then 111
    # Revoked (our revocation commits, then forgets the order), and Faust's consumer commits
    # once more as it stops: nothing, not Faust's 111.
    acks._order.acked_through.pop((tp.topic, tp.partition))
    assert timer_commits() == []
    # A topic whose events are not acked here (the source leases): Faust's own say.
    leases = TP("source-leases", 0)
    consumer._committed_offset[leases] = 0
    consumer._acked[leases].extend([0, 1, 2])
    assert consumer._new_offset(leases) == 3


# --- where reading starts: the committed offsets perform_seek looks up ----------------------
# Faust's own rebalance callbacks and perform_seek run here; only what needs a started aiokafka
# consumer or a whole worker is replaced: the assignment, aiokafka's lookup (which can be held
# or made to fail), and the app's callbacks (which note what the consumer knows while they run).

RAW0, RAW1 = TP("deskstream.raw", 0), TP("deskstream.raw", 1)


class _Group:
    """The group's committed offsets as aiokafka's ``seek_to_committed`` finds them (None:
    nothing committed), the consumer's assignment, and the lookups made."""

    def __init__(self, consumer: Consumer, committed: dict[TP, int | None]) -> None:
        self.consumer = consumer
        self.committed = committed
        self.assigned: set[TP] = set()
        self.lookups = 0
        #: set to hold the next lookups until it is set; errors they raise, in order
        self.hold: asyncio.Event | None = None
        self.errors: list[BaseException] = []
        #: set once a lookup has found the offsets
        self.found = asyncio.Event()
        #: what ``committed_at_assignment`` said while the app's revocation callback ran
        self.seen_at_revocation: dict[TP, int | None] = {}
        #: each partition's log start (0 unless set), and the seeks the lookup made; set to
        #: hold the next log-start lookups until it is set, and errors they raise, in order
        self.log_start: dict[TP, int] = {}
        self.sought: dict[TP, int] = {}
        self.hold_log_starts: asyncio.Event | None = None
        self.log_start_errors: list[BaseException] = []
        #: set once a lookup has sought the partitions with nothing committed
        self.placed = asyncio.Event()
        consumer_any = cast(Any, consumer)
        consumer_any.assignment = lambda: set(self.assigned)
        consumer_any.seek_to_committed = self.seek_to_committed
        consumer_any.earliest_offsets = self.earliest_offsets
        consumer_any.seek_wait = self.seek_wait
        consumer_any._on_partitions_revoked = self.on_revoked
        consumer_any._on_partitions_assigned = self.on_assigned

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        self.lookups += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.found.set()
        return {TopicPartition(tp.topic, tp.partition): self.committed[tp] for tp in self.assigned}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        if self.hold_log_starts is not None:
            await self.hold_log_starts.wait()
        if self.log_start_errors:
            raise self.log_start_errors.pop(0)
        return {tp: self.log_start.get(tp, 0) for tp in tps}

    async def seek_wait(self, offsets: Mapping[TP, int]) -> None:
        self.sought.update(offsets)
        self.placed.set()

    async def on_revoked(self, revoked: set[TP]) -> None:
        # where acks.Revocations commits: the group's offsets are still known here
        self.seen_at_revocation = {
            tp: self.consumer.committed_at_assignment(tp) for tp in sorted(revoked)
        }

    async def on_assigned(self, assigned: set[TP], generation_id: int) -> None:
        self.assigned = set(assigned)

    async def assign(self, *tps: TP) -> None:
        self.consumer.app.on_rebalance_start()  # as aiokafka's rebalance listener does first
        await self.consumer.on_partitions_revoked(set(self.assigned))
        await self.consumer.on_partitions_assigned(set(tps), 1)

    def release(self) -> None:
        """Let the lookups held (``hold``) go on."""
        assert self.hold is not None
        self.hold.set()

    def known(self) -> dict[TP, int | None]:
        return {tp: self.consumer.committed_at_assignment(tp) for tp in (RAW0, RAW1)}


async def _assigned(committed: dict[TP, int | None], *, hold: bool) -> tuple[Consumer, _Group]:
    """A consumer assigned RAW0 and RAW1, whose lookups wait (``hold``) until released."""
    consumer = _consumer()
    group = _Group(consumer, committed)
    await group.assign(RAW0, RAW1)
    if hold:
        group.hold = asyncio.Event()
    return consumer, group


async def test_a_committed_offset_is_known_only_once_perform_seek_has_looked_it_up() -> None:
    # The reviewer's case: records fetched from the committed offset reach the agents while
    # the recovery's perform_seek is still looking it up, and Faust's record of it said None.
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=True)
    seeking = asyncio.ensure_future(consumer.perform_seek())
    await asyncio.sleep(0.01)
    assert group.lookups == 1
    assert consumer._committed_offset.get(RAW0) is None  # Faust's: "none", though 7 is
    assert group.known() == {RAW0: None, RAW1: None}  # not "0": unknown yet
    group.release()
    await seeking
    assert group.known() == {RAW0: 7, RAW1: 0}  # nothing committed: the log's start


async def test_a_partition_with_nothing_committed_is_sought_to_its_log_start() -> None:
    # Faust seeks only RAW0. RAW1's records fetched before the lookup were dropped by the
    # agents: the seek brings them again, and retention moved its log's start to 40, where
    # reading starts (not a gap from 0).
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=False)
    group.log_start[RAW1] = 40
    await consumer.perform_seek()
    assert group.sought == {RAW1: 40}
    assert group.known() == {RAW0: 7, RAW1: 40}


async def test_a_committed_start_is_known_while_the_log_starts_are_looked_up() -> None:
    # Faust's seek has moved RAW0 to 7 and its records flow: held back until the log
    # starts are known, they would be dropped (EARLY) and read again only by a rewind.
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=False)
    group.hold_log_starts = asyncio.Event()
    seeking = asyncio.ensure_future(consumer.perform_seek())
    await asyncio.sleep(0.01)
    assert group.known() == {RAW0: 7, RAW1: None}
    group.hold_log_starts.set()
    await seeking
    assert group.known() == {RAW0: 7, RAW1: 0}


async def test_a_lookup_cut_short_after_faust_seek_is_made_again_for_the_rest_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust's seek again would send RAW0 back to 7 over records its agent has taken.
    monkeypatch.setattr(Consumer, "LOOKUP_AGAIN_S", 0.01)
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=False)
    group.log_start[RAW1] = 40
    group.log_start_errors = [RuntimeError("leader not available")]
    with pytest.raises(RuntimeError):
        await consumer.perform_seek()
    async with asyncio.timeout(5):
        await group.placed.wait()
    assert group.known() == {RAW0: 7, RAW1: 40}
    assert group.lookups == 1  # Faust's seek made once
    assert group.sought == {RAW1: 40}


async def test_changelog_partitions_are_left_to_the_tables_recovery() -> None:
    consumer = _consumer_with_table()
    group = _Group(consumer, {RAW0: None, LINKS: None})
    await group.assign(RAW0, LINKS)
    await consumer.perform_seek()
    assert group.sought == {RAW0: 0}


async def test_they_are_forgotten_after_a_revocations_commit_and_at_an_assignment() -> None:
    consumer, group = await _assigned({RAW0: 7, RAW1: 3}, hold=False)
    await consumer.perform_seek()
    assert group.known() == {RAW0: 7, RAW1: 3}
    await group.assign(RAW1)
    assert group.seen_at_revocation == {RAW0: 7, RAW1: 3}
    assert group.known() == {RAW0: None, RAW1: None}  # RAW1 kept, but looked up again
    group.committed[RAW1] = 9
    await consumer.perform_seek()
    assert group.known() == {RAW0: None, RAW1: 9}


async def test_a_lookup_made_across_a_rebalance_is_not_taken() -> None:
    consumer, group = await _assigned({RAW0: 7, RAW1: 3}, hold=True)
    seeking = asyncio.ensure_future(consumer.perform_seek())
    await asyncio.sleep(0.01)
    await group.assign(RAW0, RAW1)  # the offsets found may be older than the new commits
    group.release()
    await seeking
    assert group.known() == {RAW0: None, RAW1: None}  # the new assignment's lookup says


async def test_a_lookup_the_recovery_cut_short_is_made_again_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The recovery waits for perform_seek at most a broker request, then cancels it and never
    # makes it again: the agents would hold the partitions' records back for good.
    monkeypatch.setattr(Consumer, "LOOKUP_AGAIN_S", 0.01)
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consumer.perform_seek(), 0.01)
    group.hold = None
    group.errors = [RuntimeError("coordinator not available")]
    with caplog.at_level(logging.WARNING):
        async with asyncio.timeout(5):
            await group.placed.wait()  # noted in the same step
    assert group.known() == {RAW0: 7, RAW1: 0}
    assert group.lookups == 3  # cut short, failed, found
    assert any("coordinator not available" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0.05)
    assert group.lookups == 3  # found: no more lookups


async def test_a_lookup_cut_short_by_a_rebalance_is_left_to_the_next_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Consumer, "LOOKUP_AGAIN_S", 0.01)
    consumer, group = await _assigned({RAW0: 7, RAW1: None}, hold=True)
    seeking = asyncio.ensure_future(consumer.perform_seek())
    await asyncio.sleep(0.01)
    await group.assign(RAW0)  # the recovery starts over (RebalanceAgain) and cancels it
    seeking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await seeking
    await asyncio.sleep(0.05)
    assert group.lookups == 1  # its own perform_seek looks them up
    assert group.known() == {RAW0: None, RAW1: None}
