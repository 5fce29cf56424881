"""Lanes: per-partition order, pause when behind, resume when caught up, with the partition
identities faust's consumer accepts; a failing handler is retried in place, never dropped; a
released partition lets its command in progress finish before the next owner starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from aiokafka.structs import TopicPartition
from faust.types import TP

from app.agents import lanes as lanes_module
from app.agents.lanes import Handler, Lanes
from connectors.base.retry import RetryPolicy, between_attempts, call_with_retries
from schemas.errors import RateLimitedError


class Consumer:
    """What faust's consumer does with pause and resume: it keeps the partitions it is given
    in its active set and asserts, on every fetch, that they are faust TPs."""

    def __init__(self, assigned: set[TP]) -> None:
        self.active: set[Any] = set(assigned)
        self.assigned = assigned
        self.paused: list[Any] = []
        self.resumed: list[Any] = []

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        self.paused += list(tps)
        self.active.difference_update(self.paused)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = list(tps)
        self.resumed += tps
        self.active.update(tps)  # as faust 0.15 does: the objects as given

    def assignment(self) -> set[TP]:
        return self.assigned

    def fetch_check(self) -> bool:
        return all(isinstance(tp, TP) for tp in self.active)


def _event(tp: TopicPartition, offset: int) -> faust.EventT[Any]:
    message = SimpleNamespace(tp=tp, offset=offset)
    return cast(faust.EventT[Any], SimpleNamespace(message=message, offset=offset))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the lanes did not get there within 5 s")


async def test_a_lane_behind_pauses_and_resumes_its_partition_as_a_faust_tp() -> None:
    gate = asyncio.Event()
    handled: list[int] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        await gate.wait()
        handled.append(cast(Any, event).offset)

    consumer = Consumer({TP("commands.zendesk", 0)})
    lanes = Lanes(handler, lambda: consumer, read=_same, depth=4)
    # aiokafka's driver hands over its own TopicPartition, not faust's TP
    for offset in range(6):
        lanes.submit(_event(TopicPartition("commands.zendesk", 0), offset))
    assert consumer.paused == [TP("commands.zendesk", 0)]
    gate.set()
    for _ in range(100):
        if len(handled) == 6:
            break
        await asyncio.sleep(0.01)
    await lanes.stop()
    assert handled == [0, 1, 2, 3, 4, 5]  # in order
    assert consumer.resumed == [TP("commands.zendesk", 0)]
    assert all(type(tp) is TP for tp in consumer.paused + consumer.resumed)
    assert consumer.fetch_check()  # faust's fetcher would not crash


async def test_lanes_stopped_with_a_partition_paused_resume_it_if_it_is_still_assigned() -> None:
    # An agent stopped on its own and restarted by its supervisor: nothing else resumes it.
    hold = asyncio.Event()
    ours, gone = TP("commands.zendesk", 0), TP("commands.zendesk", 1)
    consumer = Consumer({ours})
    lanes = Lanes(_noting([], hold), lambda: consumer, read=_same, depth=2)
    for tp in (ours, gone):
        for offset in range(3):
            lanes.submit(_command(tp, offset, "t"))
    assert sorted(consumer.paused) == [ours, gone]
    await lanes.stop()
    assert consumer.resumed == [ours]  # not the one no longer assigned
    assert ours in consumer.active


async def test_a_failing_handler_gets_the_same_event_again_and_nothing_overtakes_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(lanes_module, "FIRST_BACKOFF_S", 0.01)
    calls: list[tuple[int, bool]] = []
    failures: list[None] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        offset = cast(Any, event).offset
        calls.append((offset, again))
        if offset == 1 and len([c for c in calls if c[0] == 1]) < 3:
            raise RuntimeError("the producer refused the write result")

    tp = TP("commands.zendesk", 0)
    consumer = Consumer({tp})
    lanes = Lanes(handler, lambda: consumer, read=_same, on_failure=lambda: failures.append(None))
    for offset in range(3):
        lanes.submit(_event(TopicPartition(tp.topic, tp.partition), offset))
    await _until(lambda: (2, False) in calls)
    await lanes.stop()
    assert calls == [(0, False), (1, False), (1, True), (1, True), (2, False)]
    assert len(failures) == 2
    logged = [r for r in caplog.records if "lane failed" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.exc_info for r in logged)  # with the traceback


async def test_a_released_partition_finishes_its_command_in_progress_and_drops_the_queue() -> None:
    started, finish = asyncio.Event(), asyncio.Event()
    done: list[int] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        started.set()
        await finish.wait()
        done.append(cast(Any, event).offset)

    tp = TP("commands.zendesk", 1)
    consumer = Consumer({tp})
    lanes = Lanes(handler, lambda: consumer, read=_same)
    for offset in range(3):
        lanes.submit(_event(TopicPartition(tp.topic, tp.partition), offset))
    await started.wait()
    release = asyncio.create_task(lanes.release([tp], grace=5.0))
    await asyncio.sleep(0.05)
    assert not release.done()  # the rebalance waits for the write in progress
    finish.set()
    await release
    assert done == [0]  # finished, not cut; 1 and 2 are left, unacked, to the next owner
    assert lanes.backlog() == 0


async def test_a_command_still_running_after_the_grace_period_is_cut() -> None:
    started = asyncio.Event()
    cancelled: list[int] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(cast(Any, event).offset)
            raise

    tp = TP("commands.intercom", 0)
    lanes = Lanes(handler, lambda: Consumer({tp}), read=_same)
    lanes.submit(_event(TopicPartition(tp.topic, tp.partition), 7))
    await started.wait()
    await lanes.release([tp], grace=0.05)
    assert cancelled == [7]


async def test_a_command_waiting_between_two_attempts_is_cut_without_waiting_out_the_grace() -> (
    None
):
    # A 429's Retry-After can be a minute: a rebalance (a takeover) waiting for that command
    # waited out the whole grace period, though nothing of it was on its way to the platform.
    running: list[asyncio.Task[Any] | None] = []
    cancelled: list[int] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        async def attempt() -> None:
            raise RateLimitedError("429 from the sandbox", retry_after=3600.0)

        running.append(asyncio.current_task())
        try:
            await call_with_retries(attempt, RetryPolicy(attempts=3))
        except asyncio.CancelledError:
            cancelled.append(cast(Any, event).offset)
            raise

    tp = TP("commands.zendesk", 2)
    lanes = Lanes(handler, lambda: Consumer({tp}), read=_same)
    lanes.submit(_event(TopicPartition(tp.topic, tp.partition), 4))
    await _until(lambda: bool(running) and between_attempts(running[0]))
    # the guard only fails the test instead of hanging it for the grace period
    await asyncio.wait_for(lanes.release([tp], grace=3600.0), timeout=60)
    assert cancelled == [4]


def _command(tp: TP, offset: int, link: str, *, backfill: bool = False) -> faust.EventT[Any]:
    message = SimpleNamespace(tp=TopicPartition(tp.topic, tp.partition), offset=offset)
    event = SimpleNamespace(message=message, offset=offset, key=link.encode(), backfill=backfill)
    return cast(faust.EventT[Any], event)


def _same(event: faust.EventT[Any]) -> faust.EventT[Any]:
    return event


def _backfill(event: faust.EventT[Any]) -> bool:
    return bool(cast(Any, event).backfill)


def _noting(handled: list[int], hold: asyncio.Event) -> Handler[Any]:
    """A handler noting each offset it ran; offset 0 (a live command) runs until ``hold``."""

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        offset = cast(Any, event).offset
        if offset == 0:
            await hold.wait()
        handled.append(offset)

    return handler


async def test_live_commands_overtake_queued_backfill_commands_which_run_once_live_is_done() -> (
    None
):
    # Before: one lane per partition, in offset order: a live reply queued behind every
    # backfilled ticket create its partition held (the backfill bench's p50 of 0.5 s).
    release_first = asyncio.Event()
    handled: list[int] = []
    handler = _noting(handled, release_first)
    tp, other = TP("commands.zendesk", 0), TP("commands.zendesk", 1)
    lanes = Lanes(handler, lambda: Consumer({tp, other}), read=_same, is_backfill=_backfill)
    lanes.submit(_command(tp, 0, "live-a"))  # running, held
    for offset in (1, 2):
        lanes.submit(_command(tp, offset, f"backfilled-{offset}", backfill=True))
    lanes.submit(_command(other, 3, "backfilled-3", backfill=True))
    await asyncio.sleep(0.05)
    assert handled == []  # no backfill command runs while a live one does, in any partition
    lanes.submit(_command(tp, 4, "live-b"))
    release_first.set()
    await _until(lambda: len(handled) == 5)
    await lanes.stop()
    assert handled[:2] == [0, 4]  # live first
    assert sorted(handled[2:]) == [1, 2, 3]
    assert handled.index(1) < handled.index(2)  # a lane keeps its order


async def test_a_link_keeps_its_order_across_the_live_and_backfill_lanes() -> None:
    handled: list[int] = []
    hold = asyncio.Event()
    handler = _noting(handled, hold)
    tp, busy = TP("commands.zendesk", 0), TP("commands.zendesk", 1)
    lanes = Lanes(handler, lambda: Consumer({tp, busy}), read=_same, is_backfill=_backfill)
    lanes.submit(_command(busy, 0, "busy"))  # live elsewhere: the backfill lanes wait
    lanes.submit(_command(tp, 1, "ticket", backfill=True))  # the backfilled ticket's create
    lanes.submit(_command(tp, 2, "ticket"))  # a live reply on it: after its create
    lanes.submit(_command(tp, 3, "other"))  # another live link: not held
    lanes.submit(_command(tp, 4, "other", backfill=True))  # behind the live one of its link
    await _until(lambda: handled == [3, 4])
    await asyncio.sleep(0.05)
    assert handled == [3, 4]  # the reply waits for its link's create, the create for live
    hold.set()
    await _until(lambda: len(handled) == 5)
    await lanes.stop()
    assert handled == [3, 4, 0, 1, 2]


async def test_a_partition_s_lanes_are_busy_while_they_have_an_event_queued_or_running() -> None:
    # What lets an agent handle most events beside its lanes (the chat relay): an event that
    # must keep its order with theirs goes behind them while they are busy.
    started = asyncio.Event()
    finish = asyncio.Event()
    handled: list[int] = []

    async def handler(event: faust.EventT[Any], item: Any, again: bool) -> None:
        started.set()
        await finish.wait()
        handled.append(cast(Any, event).offset)

    tp, other = TP("events", 0), TP("events", 1)
    lanes = Lanes(handler, lambda: Consumer({tp, other}), read=_same)
    assert not lanes.busy_for(_command(tp, 0, "a"))  # no lane yet
    lanes.submit(_command(tp, 0, "a"))
    assert lanes.busy_for(_command(tp, 1, "b"))  # queued
    await asyncio.wait_for(started.wait(), 5)
    assert lanes.busy_for(_command(tp, 1, "b"))  # running: taken off the queue
    assert not lanes.busy_for(_command(other, 1, "a"))  # another partition
    finish.set()
    await _until(lambda: handled == [0])
    await _until(lambda: not lanes.busy_for(_command(tp, 1, "b")))
    await lanes.stop()


async def test_a_backfill_command_waits_for_live_traffic_no_longer_than_its_bound() -> None:
    handled: list[int] = []
    handler = _noting(handled, asyncio.Event())  # live traffic that never pauses
    tp = TP("commands.zendesk", 0)
    lanes = Lanes(
        handler, lambda: Consumer({tp}), read=_same, is_backfill=_backfill, backfill_wait=0.05
    )
    lanes.submit(_command(tp, 0, "busy"))
    lanes.submit(_command(tp, 1, "ticket", backfill=True))
    await _until(lambda: handled == [1])
    await lanes.release([tp], grace=0.0)


async def test_a_released_partition_cuts_a_backfill_command_waiting_for_its_turn() -> None:
    handled: list[int] = []
    hold = asyncio.Event()
    handler = _noting(handled, hold)
    tp, waiting = TP("commands.zendesk", 0), TP("commands.zendesk", 1)
    lanes = Lanes(handler, lambda: Consumer({tp, waiting}), read=_same, is_backfill=_backfill)
    lanes.submit(_command(tp, 0, "busy"))
    lanes.submit(_command(waiting, 1, "ticket", backfill=True))
    await asyncio.sleep(0.05)
    # nothing of it is on its way: the release does not wait out the grace period for it
    await asyncio.wait_for(lanes.release([waiting], grace=3600.0), timeout=60)
    hold.set()
    await _until(lambda: handled == [0])
    await lanes.stop()
    assert handled == [0]  # its next owner runs it


async def test_each_event_is_read_once_and_its_handler_gets_what_was_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sinks decode a command in ``read``: its backfill flag and the handler (a retry
    # too) take that one decoded command; decoding it twice cost 2 % of a worker's CPU.
    monkeypatch.setattr(lanes_module, "FIRST_BACKOFF_S", 0.01)
    reads: list[int] = []
    asked: list[tuple[str, int]] = []
    handled: list[tuple[str, int, bool]] = []

    def read(event: faust.EventT[Any]) -> tuple[str, int]:
        reads.append(cast(Any, event).offset)
        return ("read", cast(Any, event).offset)

    def is_backfill(item: tuple[str, int]) -> bool:
        asked.append(item)
        return False

    async def handler(event: faust.EventT[Any], item: tuple[str, int], again: bool) -> None:
        handled.append((*item, again))
        if item[1] == 1 and not again:
            raise RuntimeError("the producer refused the write result")

    tp = TP("commands.zendesk", 0)
    lanes = Lanes(handler, lambda: Consumer({tp}), read=read, is_backfill=is_backfill)
    for offset in range(3):
        lanes.submit(_command(tp, offset, f"link-{offset}"))
    await _until(lambda: len(handled) == 4)
    await lanes.stop()
    assert reads == [0, 1, 2]  # once each, the retry included
    assert asked == [("read", 0), ("read", 1), ("read", 2)]
    assert handled == [
        ("read", 0, False),
        ("read", 1, False),
        ("read", 1, True),
        ("read", 2, False),
    ]
