"""The conductor's hand-over (``app.conductor``): a record of a partition read by one raw
channel goes onto the stream's queue at once, as the event Faust's handler would put there;
whenever something has to wait (the callbacks' lock, flow control, a full queue) or the
channel is not ours alone, Faust's handler runs instead, with its outcome. Real Faust
objects, not started: the hand-over needs no broker; the fetch loop runs it in every Kafka
test of the worker."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import faust
import pytest
from faust.types import TP, Message

from app.channels import inbound
from app.conductor import Conductor, Handover
from app.kafka_transport import use_eager_fetch

TOPIC = "deskstream.raw"
TP0 = TP(TOPIC, 0)
#: the stream buffer: its high-pressure mark is floor(8 / 1.25) = 6 events
BUFFER = 8


def _app() -> faust.App:
    app = faust.App(
        "conductor-test",
        broker="kafka://127.0.0.1:1",
        autodiscover=False,
        stream_buffer_maxsize=BUFFER,
    )
    use_eager_fetch(app)
    app.flow_control.resume()  # as a worker's, once its partitions are assigned
    return app


def _reader(app: faust.App) -> Any:
    """An agent's channel on the topic: the iterator ``aiter`` gives, as a stream reads."""
    return inbound(app, app.topic(TOPIC)).__aiter__()


def _message(offset: int, key: bytes | None = b"zendesk:ticket:7") -> Message:
    return Message(TOPIC, 0, offset, 1_700_000_000.0, 0, [("trace", b"t")], key, b"v", None)


def _conductor(app: faust.App, *channels: Any) -> Conductor:
    """The app's conductor, with ``channels`` reading partition 0 (as an assignment does)."""
    conductor = app.topics
    assert isinstance(conductor, Conductor)
    for channel in channels:
        conductor._tp_index[TP0].add(channel)
    conductor._update_callback_map()
    return conductor


def _handover(conductor: Conductor) -> Handover:
    handler = conductor._tp_to_callback[TP0]
    assert isinstance(handler, Handover)
    return handler


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_one_raw_channel_gets_the_event_faust_would_make_without_waiting() -> None:
    app = _app()
    ours = _reader(app)
    conductor = _conductor(app, ours)
    handler = _handover(conductor)

    message = _message(41)
    assert handler.deliver_now(message)
    event = ours.queue.get_nowait()
    expected = await ours.decode(_message(41), propagate=True)  # RawSchema's, as Faust calls
    assert (event.key, event.value, event.headers) == (
        expected.key,
        expected.value,
        expected.headers,
    )
    assert type(event) is type(expected)
    assert event.message is message
    assert message.refcount == 1  # one channel holds it, as Faust's incref(channels_n)

    # through the conductor's own callback (the fetch loop's), a keyless record too
    keyless = _message(42, key=None)
    await conductor.on_message(keyless)
    event = ours.queue.get_nowait()
    assert (event.key, event.message) == (None, keyless)
    assert ours.queue.empty()


async def test_suspended_flow_waits_for_the_resume_then_delivers() -> None:
    app = _app()
    ours = _reader(app)
    conductor = _conductor(app, ours)
    handler = _handover(conductor)
    app.flow_control.suspend()  # a rebalance under way

    message = _message(7)
    assert not handler.deliver_now(message)
    assert message.refcount == 0  # nothing done
    delivering = asyncio.ensure_future(conductor.on_message(message))
    await _turns()
    assert not delivering.done()
    assert ours.queue.empty()

    app.flow_control.resume()
    await asyncio.wait_for(delivering, 1)
    assert ours.queue.get_nowait().message is message


async def test_a_full_queue_waits_for_room_and_loses_nothing() -> None:
    app = _app()
    ours = _reader(app)
    conductor = _conductor(app, ours)
    for offset in range(BUFFER):
        await conductor.on_message(_message(offset))
    assert ours.queue.full()

    last = _message(BUFFER)
    assert not _handover(conductor).deliver_now(last)
    delivering = asyncio.ensure_future(conductor.on_message(last))
    await _turns()
    assert not delivering.done()

    taken = [ours.queue.get_nowait().message.offset]  # the stream takes one: room for it
    await asyncio.wait_for(delivering, 1)
    while not ours.queue.empty():
        taken.append(ours.queue.get_nowait().message.offset)
    assert taken == list(range(BUFFER + 1))  # every record, in order


async def test_a_busy_queue_takes_its_partition_out_of_the_fetch_until_it_drains() -> None:
    app = _app()
    ours = _reader(app)
    conductor = _conductor(app, ours)
    consumer = cast(Any, app.consumer)  # Faust's Consumer: _buffered_partitions is its own
    high = ours.queue.pressure_high_size
    for offset in range(high):
        await conductor.on_message(_message(offset))
    assert TP0 not in consumer._buffered_partitions
    await conductor.on_message(_message(high))  # the queue at its high mark
    assert TP0 in consumer._buffered_partitions

    while ours.queue.qsize() > ours.queue.pressure_drop_size:
        ours.queue.get_nowait()
    ours.queue.get_nowait()  # below the drop mark: fetched again
    assert TP0 not in consumer._buffered_partitions


async def test_a_held_lock_is_waited_for() -> None:
    app = _app()
    ours = _reader(app)
    conductor = _conductor(app, ours)
    message = _message(3)
    async with conductor._tp_to_callback_lock:  # a resubscription rebuilding the callbacks
        delivering = asyncio.ensure_future(conductor.on_message(message))
        await _turns()
        assert not delivering.done()
    await asyncio.wait_for(delivering, 1)
    assert ours.queue.get_nowait().message is message


async def test_two_channels_each_get_the_event_from_fausts_handler() -> None:
    app = _app()
    first = _reader(app)
    second = _reader(app)
    conductor = _conductor(app, first, second)
    message = _message(9)
    assert not _handover(conductor).deliver_now(message)
    await conductor.on_message(message)
    assert first.queue.get_nowait().message is message
    assert second.queue.get_nowait().message is message
    assert message.refcount == 2


@pytest.mark.parametrize("serializer", ["json", "raw"])
async def test_a_channel_with_fausts_own_schema_decodes_as_faust_does(serializer: str) -> None:
    app = _app()
    theirs = app.topic(TOPIC, key_serializer="raw", value_serializer=serializer).__aiter__()
    conductor = _conductor(app, theirs)
    message = Message(TOPIC, 0, 5, 0.0, 0, [], b"k", b'{"status": "open"}', None)
    assert not _handover(conductor).deliver_now(message)
    await conductor.on_message(message)
    event = theirs.queue.get_nowait()
    assert event.value == ({"status": "open"} if serializer == "json" else message.value)
