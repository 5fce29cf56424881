"""ack_when_delivered with real asyncio futures and small fakes of Faust's event and app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import faust

from app.agents.acks import ack_when_delivered, expect


@dataclass
class _Message:
    topic: str = "t"
    partition: int = 0
    offset: int = 7


@dataclass
class _Event:
    message: _Message = field(default_factory=_Message)
    acked: int = 0

    def ack(self) -> bool:
        self.acked += 1
        return True


@dataclass
class _App:
    crashes: list[BaseException] = field(default_factory=list)

    async def crash(self, reason: BaseException) -> None:
        self.crashes.append(reason)


def _run(sends: list[asyncio.Future[Any]]) -> tuple[_Event, _App]:
    event, app = _Event(), _App()
    ack_when_delivered(cast(faust.App, app), cast(Any, event), sends)
    return event, app


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_acks_only_after_every_send_is_acknowledged() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    event, app = _run([first, second])
    first.set_result("meta")
    await _settle()
    assert event.acked == 0
    second.set_result("meta")
    await _settle()
    assert event.acked == 1
    assert app.crashes == []


async def test_a_failed_send_never_acks_and_crashes_the_app() -> None:
    loop = asyncio.get_running_loop()
    ok, failed = loop.create_future(), loop.create_future()
    event, app = _run([ok, failed])
    ok.set_result("meta")
    failed.set_exception(TimeoutError("no ack"))
    await _settle()
    assert event.acked == 0
    assert [type(c) for c in app.crashes] == [TimeoutError]


async def test_an_event_without_output_is_acked_at_once() -> None:
    event, _ = _run([])
    assert event.acked == 1


async def test_an_event_is_acked_only_after_every_earlier_event_of_its_partition() -> None:
    # Faust would commit 8 over an unacked 7 (it allows a one-offset gap): 7's outputs, still
    # in flight, would be lost in a crash.
    loop = asyncio.get_running_loop()
    app = _App()
    slow, fast = loop.create_future(), loop.create_future()
    seventh = _Event(_Message(partition=3, offset=7))
    eighth = _Event(_Message(partition=3, offset=8))
    other = _Event(_Message(partition=4, offset=1))
    delivered: list[int] = []

    def note(event: Any) -> None:
        delivered.append(event.message.offset)

    for event, sends in ((seventh, [slow]), (eighth, [fast]), (other, [])):
        ack_when_delivered(cast(faust.App, app), cast(Any, event), sends, on_delivered=note)
    fast.set_result("meta")
    await _settle()
    assert (seventh.acked, eighth.acked) == (0, 0)  # 8 is delivered, and waits for 7
    assert other.acked == 1  # another partition is not held up
    slow.set_result("meta")
    await _settle()
    assert (seventh.acked, eighth.acked) == (1, 1)
    assert delivered == [1, 7, 8]


async def test_an_event_expected_at_reading_holds_back_the_acks_after_it() -> None:
    # A sink lane that never finished offset 20 (cut, or a bug) must not let 21 be acked:
    # Faust would commit 22 and 20 would never run.
    app = _App()
    twentieth = _Event(_Message(topic="commands", partition=1, offset=20))
    next_one = _Event(_Message(topic="commands", partition=1, offset=21))
    expect(cast(Any, twentieth))
    expect(cast(Any, next_one))
    ack_when_delivered(cast(faust.App, app), cast(Any, next_one), [])
    await _settle()
    assert next_one.acked == 0
    ack_when_delivered(cast(faust.App, app), cast(Any, twentieth), [])
    await _settle()
    assert (twentieth.acked, next_one.acked) == (1, 1)
