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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from mode.services import WaitResults
from mode.utils.times import Seconds

__all__ = ["Consumer", "Transport", "changelog_records_missed", "use_eager_fetch"]


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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the batch ``getmany`` last iterated (aiokafka's records by partition), its
        #: generation, and the last offset of each changelog partition it handed on
        #: (``_to_message``, which getmany calls for every record it hands on)
        self._batch: Mapping[Any, Sequence[Any]] = {}
        self._batch_generation = -1
        self._reached: dict[Any, int] = {}
        self._changelogs: frozenset[str] = frozenset()

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 (Faust's)
        # getmany is done with the previous batch (the fetch loop asks for the next only
        # then): read again what it set aside of the changelogs.
        batch, reached = self._batch, self._reached
        self._batch, self._reached = {}, {}
        if batch and self._batch_generation == self.app.consumer_generation_id:
            missed = changelog_records_missed(batch, reached, self._changelogs.__contains__)
            if missed:
                await self._read_again(missed)
        records, active = await super()._wait_next_records(timeout)
        self._batch = records or {}
        self._batch_generation = self.app.consumer_generation_id
        self._changelogs = frozenset(self.app.tables.changelog_topics)
        return records, active

    def _to_message(self, tp: TP, record: Any) -> Any:
        if tp.topic in self._changelogs:
            self._reached[tp] = record.offset
        return super()._to_message(tp, record)

    async def _read_again(self, missed: dict[TP, int]) -> None:
        self.log.info(
            "changelog records Faust's fetch set aside (flow suspended) are read again: %s",
            ", ".join(f"{tp.topic}[{tp.partition}] from {offset}" for tp, offset in missed.items()),
        )
        try:
            await self.seek_wait(missed)
        except IllegalStateError as exc:
            # no longer assigned (a rebalance took them): their next owner reads them
            self.log.info("changelog partitions not read again, no longer ours: %r", exc)
        except Exception as exc:  # the fetch loop must go on: the recovery watch re-reads
            self.log.warning(
                "changelog records set aside could not be sought back to (%r); a table "
                "recovery waiting for them re-reads them after its stall time "
                "(app.faust_recovery)",
                exc,
            )

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


def changelog_records_missed(
    batch: Mapping[Any, Sequence[Any]],
    reached: Mapping[Any, int],
    is_changelog: Callable[[str], bool],
) -> dict[TP, int]:
    """For each changelog partition of ``batch`` (aiokafka's records, by partition) with a
    record past the last offset handed on (``reached``), the first such offset: where the
    partition must be read again from. Everything before it was handed on, or came before
    the batch (the position aiokafka fetched it from), so the seek back skips nothing."""
    missed: dict[TP, int] = {}
    for tp, records in batch.items():
        if not records or not is_changelog(tp.topic):
            continue
        last = reached.get(tp)
        for record in records:
            if last is None or record.offset > last:
                missed[tp] = record.offset
                break
    return missed


class Transport(driver.Transport):
    Consumer = Consumer


def use_eager_fetch(app: faust.App) -> None:
    """Make ``app`` consume through this transport (before any topic is declared)."""
    app.transport = Transport(app.conf.broker_consumer, app)
