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
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver
from mode.services import WaitResults
from mode.utils.times import Seconds

__all__ = ["Consumer", "Transport", "use_eager_fetch"]


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


class Transport(driver.Transport):
    Consumer = Consumer


def use_eager_fetch(app: faust.App) -> None:
    """Make ``app`` consume through this transport (before any topic is declared)."""
    app.transport = Transport(app.conf.broker_consumer, app)
