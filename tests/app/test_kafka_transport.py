"""The fetch loop's hand-over (``app.kafka_transport``): a callback that does not wait is run
at once, one that waits is carried on exactly as its task would have carried it, and cut
when the suspend event comes first. Real Faust consumer objects (not started: the hand-over
needs no broker); the fetch loop itself runs in every Kafka test of the worker."""

from __future__ import annotations

import asyncio
import warnings

import faust
import pytest

from app.kafka_transport import Consumer, resume, use_eager_fetch


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
