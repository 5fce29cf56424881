"""A table recovery whose active changelog partitions stop receiving records is noticed,
explained and re-read (``app.recovery_watch``, ``app.faust_recovery``).

The decision is pure and tested on its own. The recovery's side runs on the worker's own Faust
app (built, not started: no broker): its recovery service, its consumer's bookkeeping of
active and paused partitions and read offsets. Only the consumer's seek, which needs a running
aiokafka consumer, is recorded instead of sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
import pytest
from faust.types import TP
from mode import Service

from app.faust_recovery import STALL_AFTER_S, RebalanceSafeRecovery, TableManager
from app.recovery_watch import describe_fetch_path, stalled_partitions

LINKS_0 = TP("deskstream-links-changelog", 0)
LINKS_1 = TP("deskstream-links-changelog", 1)
EVENTS_0 = TP("deskstream-recent_events-changelog", 0)


def test_a_partition_that_hears_nothing_for_the_quiet_time_is_stalled() -> None:
    stalled = stalled_partitions(
        110.0,
        remaining={LINKS_0: 14, LINKS_1: 3, EVENTS_0: 0},
        started_at=100.0,
        last_event_at={LINKS_1: 108.0},
        last_nudge_at={},
        quiet_for=10.0,
    )
    # LINKS_1 had a record 2 s ago (slow, not stalled); EVENTS_0 has all its records
    assert stalled == [LINKS_0]


def test_nothing_is_stalled_before_the_quiet_time_or_after_a_recent_nudge() -> None:
    remaining = {LINKS_0: 14, LINKS_1: 3}
    assert (
        stalled_partitions(
            109.9,
            remaining=remaining,
            started_at=100.0,
            last_event_at={},
            last_nudge_at={},
            quiet_for=10.0,
        )
        == []
    )
    assert stalled_partitions(
        125.0,
        remaining=remaining,
        started_at=100.0,
        last_event_at={},
        last_nudge_at={LINKS_0: 120.0},
        quiet_for=10.0,
    ) == [LINKS_1]
    assert (
        stalled_partitions(
            500.0,
            remaining=remaining,
            started_at=None,
            last_event_at={},
            last_nudge_at={},
            quiet_for=10.0,
        )
        == []
    )


class _SeekRecorder:
    """The consumer's ``seek_wait`` (aiokafka seeks, run on its thread): recorded."""

    def __init__(self) -> None:
        self.seeks: list[dict[TP, int]] = []

    async def __call__(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(dict(partitions))


def _recovering(now: float) -> tuple[RebalanceSafeRecovery, Any, _SeekRecorder]:
    """A worker-shaped app whose recovery waits for three active changelog partitions: it
    started 20 s ago, LINKS_0 has read nothing of its 15 records, LINKS_1 4 of its 10 (the
    last just now), EVENTS_0 all of its 2."""
    app = faust.App("recovery-watch", broker="kafka://127.0.0.1:1", TableManager=TableManager)
    recovery = cast(Any, app.tables).recovery
    assert isinstance(recovery, RebalanceSafeRecovery)
    consumer = cast(Any, app.consumer)
    seeks = _SeekRecorder()
    consumer.seek_wait = seeks
    recovery.active_tps.update({LINKS_0, LINKS_1, EVENTS_0})
    recovery.active_highwaters.update({LINKS_0: 14, LINKS_1: 9, EVENTS_0: 1})
    recovery.active_offsets.update({LINKS_0: -1, LINKS_1: 3, EVENTS_0: 1})
    recovery.in_recovery = True
    recovery._recovery_started_at = now - 20.0
    recovery._active_events_received_at[LINKS_1] = now - 0.1
    recovery._active_events_received_at[EVENTS_0] = now - 19.0
    consumer.pause_partitions({LINKS_0, LINKS_1, EVENTS_0})
    consumer._read_offset[LINKS_0] = 14  # what a stale read offset looks like
    consumer.resume_flow()  # "Resuming flow...": the recovery now waits for its records
    return recovery, consumer, seeks


async def test_a_stalled_partition_is_reported_and_read_again_from_its_last_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = 1000.0
    recovery, consumer, seeks = _recovering(now)
    with caplog.at_level(logging.WARNING):
        assert await recovery.check_for_stall(now) == [LINKS_0]
    assert seeks.seeks == [{LINKS_0: 0}]  # Faust's own seek: from offset 0 for an empty table
    assert LINKS_0 in consumer._active_partitions
    assert LINKS_0 not in consumer._paused_partitions
    assert LINKS_1 not in consumer._active_partitions  # slow but receiving: left alone
    # One stall warning (the filter leaves out whatever else logs meanwhile: asyncio
    # reporting an earlier test's task when the collector finds it, for one).
    [warning] = [r.getMessage() for r in caplog.records if "table recovery stalled" in r.msg]
    assert "deskstream-links-changelog[0], which still lack 15 record(s)" in warning
    assert "drops records below offset=14" in warning  # the state that explains a stall
    assert "restart this worker" in warning  # what to do if it repeats

    # The next look, a second later, leaves the re-read time to work; after another quiet
    # period it re-reads again.
    assert await recovery.check_for_stall(now + 1.0) == []
    recovery._active_events_received_at[LINKS_1] = now + STALL_AFTER_S - 0.1
    assert await recovery.check_for_stall(now + STALL_AFTER_S) == [LINKS_0]
    assert seeks.seeks == [{LINKS_0: 0}, {LINKS_0: 0}]


async def test_the_re_read_resumes_from_the_last_applied_record() -> None:
    now = 1000.0
    recovery, _, seeks = _recovering(now)
    recovery._active_events_received_at[LINKS_1] = now - STALL_AFTER_S
    assert await recovery.check_for_stall(now) == [LINKS_0, LINKS_1]
    assert seeks.seeks == [{LINKS_0: 0, LINKS_1: 3}]


async def test_nothing_is_re_read_outside_the_wait_for_active_records() -> None:
    now = 1000.0
    recovery, consumer, seeks = _recovering(now)
    consumer.stop_flow()  # a rebalance: the recovery is about to start over
    assert await recovery.check_for_stall(now) == []
    consumer.resume_flow()
    recovery.signal_recovery_start.set()  # a newer assignment is waiting
    assert await recovery.check_for_stall(now) == []
    recovery.signal_recovery_start.clear()
    recovery.in_recovery = False
    assert await recovery.check_for_stall(now) == []
    assert seeks.seeks == []


async def test_a_recovery_that_ends_during_the_re_read_keeps_its_changelogs_paused() -> None:
    now = 1000.0
    recovery, consumer, seeks = _recovering(now)

    async def seek_while_the_recovery_ends(partitions: dict[TP, int]) -> None:
        await seeks(partitions)
        recovery.in_recovery = False  # the last records arrived meanwhile: "Done reading"

    consumer.seek_wait = seek_while_the_recovery_ends
    assert await recovery.check_for_stall(now) == [LINKS_0]
    assert seeks.seeks == [{LINKS_0: 0}]
    assert LINKS_0 in consumer._paused_partitions
    assert LINKS_0 not in consumer._active_partitions


async def test_a_look_that_fails_is_told_once_and_the_watch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recovery, _, _ = _recovering(0.0)
    recovery.check_every_s = 0.01
    looks: list[float] = []

    async def failing_look(now: float) -> list[TP]:
        looks.append(now)
        if len(looks) == 4:
            recovery._stopped.set()  # the service stops: the watch ends
        raise AttributeError("'Recovery' object has no attribute '_recovery_started_at'")

    recovery.check_for_stall = failing_look  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(recovery._watch_for_stalls.fun(recovery), timeout=30)
    assert len(looks) == 4  # every look after a failure was still made
    told = [r for r in caplog.records if "stall watch failed" in r.getMessage()]
    [failure] = told
    assert failure.exc_info is not None


def test_the_watch_runs_as_a_task_of_the_recovery_service() -> None:
    recovery, _, _ = _recovering(0.0)
    assert "_watch_for_stalls" in {task.fun.__name__ for task in recovery._get_tasks()}


class Fetcher(Service):
    """Shaped as Faust's fetcher: a mode service whose task ``Fetcher._fetcher`` runs the fetch
    loop, here waiting inside the async generator it reads records from."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    @Service.task
    async def _fetcher(self) -> None:
        async for _ in self._getmany():  # as Faust's fetch loop reads its records
            pass

    async def _getmany(self) -> AsyncIterator[int]:
        await self._deliver()
        yield 1

    async def _deliver(self) -> None:
        await self.gate.wait()


async def test_the_account_says_where_a_waiting_task_waits() -> None:
    fetcher = Fetcher()
    await fetcher.start()
    await asyncio.sleep(0)
    try:
        app = faust.App("recovery-watch", broker="kafka://127.0.0.1:1")
        account = describe_fetch_path(app, [LINKS_0])
        where = next(line for line in account.splitlines() if line.startswith("Fetcher._fetcher"))
        chain = where.removeprefix("Fetcher._fetcher waits at: ").split(" -> ")
        names = [step.split(" ")[0] for step in chain[-5:-1]]
        assert names == ["_fetcher", "_getmany", "_deliver", "wait"]
        assert "_deliver (app/test_recovery_watch.py:" in where
        assert chain[-1].startswith("Future")  # asyncio's future, awaited through its iterator
        assert "deskstream-links-changelog[0] faust: active=" in account
        # aiokafka's side needs a started consumer: said, not raised
        assert "aiokafka: <unreadable" in account
        assert "Recovery._slurp_changelogs waits at: no such task" in account
    finally:
        fetcher.gate.set()
        await fetcher.stop()
