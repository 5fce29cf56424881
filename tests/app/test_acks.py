"""ack_when_delivered with real asyncio futures and small fakes of Faust's event and app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import pytest
from faust.types import TP

from app.agents import acks
from app.agents.acks import ack_when_delivered, expect, settle


@dataclass
class _Message:
    topic: str = "t"
    partition: int = 0
    offset: int = 7
    #: the consumer generation it was fetched in (None: not told)
    generation_id: int | None = None


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
    acks._order.forget([_Tp("raw", 9)], generation=1)  # a rebalance took partition 9 meanwhile
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


async def test_a_batch_handed_over_after_its_partition_was_revoked_is_never_acked() -> None:
    # A batch taken before a revocation and handed over after it (a platform call outlasted
    # the revocation's wait): acked, it would start its partition's order again after the
    # revocation forgot it, and reach a commit with the offsets of an assignment gone.
    app = _App()
    acks._order.forget([_Tp("raw", 21)], generation=7)
    before = _Event(_Message(topic="raw", partition=21, offset=40, generation_id=7))
    after = _Event(_Message(topic="raw", partition=21, offset=40, generation_id=8))
    assert acks.revoked_since_read(cast(Any, before))
    assert not acks.revoked_since_read(cast(Any, after))
    acks.ack_all_when_delivered(cast(faust.App, app), cast(Any, [before]), [])
    assert before.acked == 0
    assert acks.acked_below("raw", 21) == 0
    acks.ack_all_when_delivered(cast(faust.App, app), cast(Any, [after]), [])  # read anew
    assert after.acked == 1
    assert acks.acked_below("raw", 21) == 41


@dataclass
class _Signal:
    receivers: list[Any] = field(default_factory=list)

    def connect(self, receiver: Any) -> None:
        self.receivers.append(receiver)


@dataclass
class _Consumer:
    commits: list[dict[Any, int]] = field(default_factory=list)
    #: where each partition's reading started in this assignment (app.kafka_transport)
    started_at: dict[Any, int] = field(default_factory=dict)

    def committed_at_assignment(self, tp: Any) -> int | None:
        return self.started_at.get(tp)

    async def _commit(self, offsets: dict[Any, int]) -> bool:
        self.commits.append(dict(offsets))
        return True


@dataclass
class _RevokingApp(_App):
    """What ``Revocations`` uses of a Faust app."""

    consumer: _Consumer = field(default_factory=_Consumer)
    consumer_generation_id: int = 3
    on_partitions_revoked: _Signal = field(default_factory=_Signal)
    on_before_shutdown: _Signal = field(default_factory=_Signal)


class _BatchInHand:
    """An agent's batch, taken and being worked through (until ``work`` is done), then handed
    over; and the revocations of the worker it runs on."""

    def __init__(self, agent: str, message: _Message) -> None:
        self.app = _RevokingApp()
        self.revocations = acks.Revocations(cast(faust.App, self.app))
        self.event = _Event(message)
        self.work: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done = asyncio.ensure_future(self._run(self.revocations.in_hand(agent)))

    async def _run(self, in_hand: acks.InHand) -> None:
        with in_hand:
            await self.work
            acks.ack_all_when_delivered(cast(faust.App, self.app), cast(Any, [self.event]), [])


async def test_a_revocation_waits_for_the_batch_in_hand_and_commits_it() -> None:
    batch = _BatchInHand(
        "normalize", _Message(topic="raw", partition=22, offset=5, generation_id=3)
    )
    batch.app.consumer.started_at[TP("raw", 22)] = 5
    await _settle()
    revoking = asyncio.ensure_future(batch.revocations.revoked({TP("raw", 22)}))
    await _settle()
    assert not revoking.done()  # the batch in hand is waited for
    assert batch.app.consumer.commits == []
    batch.work.set_result(None)
    await asyncio.wait_for(revoking, timeout=60)
    await batch.done
    assert batch.event.acked == 1
    assert batch.app.consumer.commits == [{TP("raw", 22): 6}]  # the batch's ack, committed


async def test_a_batch_that_outlasts_the_revocation_is_dropped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(acks, "SETTLE_TIMEOUT_S", 0.05)
    batch = _BatchInHand("sync", _Message(topic="sync", partition=23, offset=9, generation_id=3))
    await _settle()
    with caplog.at_level(logging.WARNING, logger="app.agents.acks"):
        await asyncio.wait_for(batch.revocations.revoked({TP("sync", 23)}), timeout=60)
    assert "agents=sync" in caplog.text
    assert batch.app.consumer.commits == []
    assert acks.revoked_since_read(cast(Any, batch.event))
    batch.work.set_result(None)  # the slow call answers at last
    await batch.done
    assert batch.event.acked == 0  # the partition's next owner reads it again
    assert acks.acked_below("sync", 23) == 0


async def test_a_revocation_never_commits_below_where_the_assignment_started() -> None:
    app = _RevokingApp()
    app.consumer.started_at |= {TP("raw", 24): 100, TP("raw", 25): 100, TP("raw", 26): 100}
    revocations = acks.Revocations(cast(faust.App, app))
    behind = _Event(_Message(topic="raw", partition=24, offset=3, generation_id=3))
    level = _Event(_Message(topic="raw", partition=25, offset=99, generation_id=3))
    ahead = _Event(_Message(topic="raw", partition=26, offset=100, generation_id=3))
    events = [behind, level, ahead]
    acks.ack_all_when_delivered(cast(faust.App, app), cast(Any, events), [])
    assert [event.acked for event in events] == [1, 1, 1]
    await revocations.revoked({TP("raw", 24), TP("raw", 25), TP("raw", 26)})
    assert app.consumer.commits == [{TP("raw", 26): 101}]


async def test_a_batch_that_raises_crashes_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    # Left unacked in a worker that goes on, its events would hold back every later commit
    # of their partitions until a rebalance.
    app = _RevokingApp()
    in_hand = acks.Revocations(cast(faust.App, app)).in_hand("normalize")
    with caplog.at_level(logging.CRITICAL), pytest.raises(RuntimeError), in_hand:
        raise RuntimeError("send refused")
    await _settle()
    assert [str(crash) for crash in app.crashes] == ["send refused"]
    assert "batch failed agent=normalize" in caplog.text
    assert not in_hand.busy
    app.should_stop = True  # a stop under way: its events are read again all the same
    with pytest.raises(KeyError), in_hand:
        raise KeyError("during the stop")
    await _settle()
    assert len(app.crashes) == 1
