"""ack_when_delivered with real asyncio futures and small fakes of Faust's event and app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import pytest

from app.agents import acks
from app.agents.acks import ack_when_delivered, expect, settle


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
class _Producer:
    async def flush(self) -> None:
        return None


@dataclass
class _App:
    crashes: list[BaseException] = field(default_factory=list)
    producer: _Producer = field(default_factory=_Producer)
    #: mode's Service.should_stop: a stop (or a crash) is under way
    should_stop: bool = False

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


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
async def test_an_output_lost_to_a_stop_leaves_the_event_unacked_without_a_crash(
    outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A deploy's SIGTERM closes the producer under batches in flight (NotReady) or cancels
    # them: the events are read again by the next owner, and a stop is not a crash.
    caplog.set_level(logging.DEBUG, logger="app.agents.acks")
    loop = asyncio.get_running_loop()
    app = _App(should_stop=True)
    events, sends = [_Event(), _Event(), _Event()], [loop.create_future() for _ in range(3)]
    for event, send in zip(events, sends, strict=True):
        ack_when_delivered(cast(faust.App, app), cast(Any, event), [send])
    for send in sends:
        if outcome == "failed":
            send.set_exception(RuntimeError("Producer service not yet started"))
        else:
            send.cancel()
    await _settle()
    assert [event.acked for event in events] == [0, 0, 0]
    assert app.crashes == []
    told = [r for r in caplog.records if r.name == "app.agents.acks"]
    # One line for the operator, the rest (a busy worker has hundreds) at debug level.
    assert [r.levelname for r in told] == ["INFO", "DEBUG", "DEBUG"]
    assert "read again by the partition's next owner" in told[0].getMessage()


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


async def test_a_batch_acks_each_partition_in_order_and_skips_a_revoked_one() -> None:
    # normalize and sync ack a whole batch at once (ack_all_when_delivered): each partition
    # is swept in offset order, one held back by an earlier event stays held, and a partition
    # revoked while the batch was out is not acked from here.
    loop = asyncio.get_running_loop()
    app = _App()
    earlier_out = loop.create_future()
    held_back = _Event(_Message(topic="raw", partition=2, offset=4))
    ack_when_delivered(cast(faust.App, app), cast(Any, held_back), [earlier_out])
    batch = [
        _Event(_Message(topic="raw", partition=1, offset=10)),
        _Event(_Message(topic="raw", partition=2, offset=5)),
        _Event(_Message(topic="raw", partition=1, offset=11)),
        _Event(_Message(topic="raw", partition=9, offset=3)),
    ]
    acked: list[tuple[int, int]] = []

    def note(event: Any) -> None:
        acked.append((event.message.partition, event.message.offset))

    out = loop.create_future()
    acks.ack_all_when_delivered(cast(faust.App, app), cast(Any, batch), [out], on_delivered=note)
    acks._order.forget([_Tp("raw", 9)])  # a rebalance took partition 9 meanwhile
    out.set_result("meta")
    await _settle()
    assert acked == [(1, 10), (1, 11)]
    assert [event.acked for event in batch] == [1, 0, 1, 0]
    assert acks.acked_below("raw", 1) == 12
    assert acks.acked_below("raw", 9) == 0  # forgotten, nothing acked since
    earlier_out.set_result("meta")
    await _settle()
    assert (held_back.acked, batch[1].acked) == (1, 1)
    assert acked == [(1, 10), (1, 11), (2, 5)]
    assert acks.acked_below("raw", 2) == 6


@dataclass
class _Tp:
    topic: str
    partition: int


async def test_a_revocation_waits_for_outputs_but_not_for_a_deferred_re_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A re-decision asked for seconds later (the sync stage's Plan.retry_in) is not on its
    # way to Kafka: its partition's next owner reads the input again and asks again. A
    # revocation that waited for it held every takeover up to the settle timeout.
    monkeypatch.setattr(acks, "SETTLE_TIMEOUT_S", 3600.0)
    loop = asyncio.get_running_loop()
    app = _App()
    later, command = loop.create_future(), loop.create_future()
    waiting = _Event(_Message(topic="sync", partition=5, offset=1))
    sending = _Event(_Message(topic="sync", partition=6, offset=1))
    ack_when_delivered(cast(faust.App, app), cast(Any, waiting), [later], deferred=True)
    ack_when_delivered(cast(faust.App, app), cast(Any, sending), [command])

    # at once for the deferred one (the guard only fails the test instead of hanging it)
    await asyncio.wait_for(settle(cast(faust.App, app), [_Tp("sync", 5)]), timeout=60)
    assert waiting.acked == 0  # never acked: read again by the next owner
    settling = asyncio.ensure_future(settle(cast(faust.App, app), [_Tp("sync", 6)]))
    await _settle()
    assert not settling.done()  # a send on its way is waited for
    command.set_result("meta")
    await asyncio.wait_for(settling, timeout=60)
    assert sending.acked == 1
    later.set_result("meta")
