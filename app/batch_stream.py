"""Faust's ``Stream`` with ``noack_take`` batches taken from the channel queue in one go.

normalize and sync read their topics as ``noack_take(max_, within)`` batches. Faust builds
those batches one record at a time: a background task iterates the stream, and every record
goes through the stream's per-record step (an event-loop turn of its own, ``sleep(0)``, the
message's tracking, the stream sensor, then the buffering processor, a coroutine, and the
stream's merge, another) before the batch's window hands it over. That step cost more than
the work of a raw record in normalize (``bench.faust_floor``: 98 µs a record here against
a bare aiokafka loop's 25). And Faust's window is a timer: an idle stream woke every
``within`` (10 ms) to hand over nothing, and a busy worker closed windows with thousands of
fetched records still queued behind the buffering task, taking batches of 33.

This stream takes a batch straight from the channel queue Faust's conductor fills: every
record waiting there, up to ``max_``, with the checks Faust's per-record step makes (a record
of an older consumer generation, or read while the flow is stopped for a rebalance, is
dropped as Faust drops it; the message is tracked as unacked; the stream sensor sees it).
The waits:

- records came in the last batch: wait up to ``within`` for the batch to fill, as Faust's
  window does, but hand it over as soon as it is full;
- the last batch was empty, so the worker is idle: wait for one record without ticking (at
  most ``IDLE_WAIT_S`` between looks at ``should_stop``), and hand over at once what is
  queued when it comes.

Faust's sensors hear of the batch once it is taken, not of each record: a sensor that takes
batches (``BatchSensor``: the worker's Prometheus monitor, ``app.faust_metrics``) once per
batch, any other one record by record as Faust's step calls it. Per record, the two sensor
calls through Faust's delegate cost about a sixth of Faust's reading path
(``bench.faust_floor``'s profile, ``docs/performance.md``).

Taking from the queue with ``get_nowait`` keeps Faust's flow control: the conductor stops
fetching a partition when its stream's queue is nearly full, and the queue tells it to go
on once it has drained. A stream with processors (whose ``Skip`` Faust acks), one that is
not over a channel (a plain iterable) or one that combines streams keeps Faust's own
``noack_take``: the worker's agents have none of these.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import faust
from faust.types import ChannelT, EventT, Message, StreamT
from mode.utils.times import Seconds, want_seconds

__all__ = ["IDLE_WAIT_S", "BatchSensor", "BatchStream"]

#: the longest an idle stream waits for a record before it looks at ``should_stop`` again
IDLE_WAIT_S = 1.0

T = TypeVar("T")


@runtime_checkable
class BatchSensor(Protocol):
    def on_batch_in(
        self, stream: StreamT[Any], events: Sequence[EventT[Any]], tracked: Sequence[Message]
    ) -> None:
        """A batch taken: ``on_stream_event_in`` for each of ``events`` and ``on_message_in``
        for each of ``tracked`` (the messages of the batch taken for the first time)."""


class BatchStream(faust.Stream[T]):
    def noack_take(self, max_: int, within: Seconds) -> AsyncGenerator[Sequence[T], None]:
        channel = self.channel
        if not isinstance(channel, ChannelT) or self.combined or self._processors:
            return super().noack_take(max_, within)
        return self._take_batches(channel, max_, want_seconds(within))

    async def _take_batches(
        self, channel: ChannelT[Any], max_: int, within: float
    ) -> AsyncGenerator[Sequence[T], None]:
        # What Faust's noack_take sets: the agent acks each event itself.
        self.enable_acks = False
        self._finalized = True
        started = await self.maybe_start()
        taker = _QueueTaker(self, channel)
        idle = True
        try:
            while not self.should_stop:
                batch = await taker.batch(max_, None if idle else within)
                idle = not batch
                if batch:
                    yield cast(Sequence[T], batch)
        except StopAsyncIteration:
            # How a stopping channel ends its readers (thrown at the queue): the batches end,
            # as Faust's stream iteration ends (an async generator may not let it through).
            return
        finally:
            self._channel_stop_iteration(channel)
            if started:
                await self.stop()
                self.service_reset()


class _QueueTaker:
    """Takes a stream's events from its channel queue, checked as Faust's per-record step
    checks them (``faust._cython.streams.StreamIterator._prepare_event``)."""

    def __init__(self, stream: BatchStream[Any], channel: ChannelT[Any]) -> None:
        app = stream.app
        self.stream = stream
        self.queue = channel.queue
        self.loop = stream.loop
        self.app = app
        self.flow_control = app.flow_control
        self.acking_topics = app.topics.acking_topics
        self.add_unacked = app.consumer.unacked.add
        self.on_message_in = stream._on_message_in
        self.on_stream_event_in = stream._on_stream_event_in

    async def batch(self, max_: int, within: float | None) -> list[EventT[Any]]:
        """Up to ``max_`` events: what is queued, then, with a window (``within``), what
        comes within it; without one (idle), whatever is queued once a record comes."""
        taken: list[EventT[Any]] = []
        tracked: list[Message] = []
        await self._fill(taken, tracked, max_, within)
        if taken:
            self._sense(taken, tracked)
        return taken

    async def _fill(
        self, taken: list[EventT[Any]], tracked: list[Message], max_: int, within: float | None
    ) -> None:
        self._take_queued(taken, tracked, max_)
        if within is None:
            if not taken and await self._wait_for_record(taken, tracked, IDLE_WAIT_S):
                self._take_queued(taken, tracked, max_)
            return
        deadline = self.loop.time() + within
        while len(taken) < max_ and not self.stream.should_stop:
            remaining = deadline - self.loop.time()
            if remaining <= 0 or not await self._wait_for_record(taken, tracked, remaining):
                break
            self._take_queued(taken, tracked, max_)

    def _take_queued(self, taken: list[EventT[Any]], tracked: list[Message], max_: int) -> None:
        queue = self.queue
        while len(taken) < max_ and not queue.empty():
            self._accept(queue.get_nowait(), taken, tracked)  # raises an error thrown at it

    async def _wait_for_record(
        self, taken: list[EventT[Any]], tracked: list[Message], wait_s: float
    ) -> bool:
        """Wait up to ``wait_s`` for a record (taken into ``taken``); False if none came."""
        try:
            async with asyncio.timeout(wait_s):
                # A get cancelled by the timeout leaves its record in the queue, even one put
                # there in the same moment (asyncio's Queue takes it only once it resumes).
                item = await self.queue.get()
        except TimeoutError:
            return False
        self._accept(item, taken, tracked)
        return True

    def _accept(self, item: Any, taken: list[EventT[Any]], tracked: list[Message]) -> None:
        if not isinstance(item, EventT):
            raise RuntimeError(
                f"noack_take takes events, and this stream's channel held {type(item).__name__}"
                f": put messages through a topic or an agent's channel"
            )
        message = item.message
        if (
            not self.flow_control.is_active()
            or message.generation_id != self.app.consumer_generation_id
        ):
            return  # read before a rebalance: Faust drops it, and the new owner reads it
        if message.topic in self.acking_topics and not message.tracked:
            message.tracked = True
            self.add_unacked(message)
            tracked.append(message)
        taken.append(item)

    def _sense(self, taken: list[EventT[Any]], tracked: list[Message]) -> None:
        stream = self.stream
        stream.events_total += len(taken)
        sensors = list(self.app.sensors)
        if all(isinstance(sensor, BatchSensor) for sensor in sensors):
            for sensor in sensors:
                sensor.on_batch_in(stream, taken, tracked)
            return
        for message in tracked:
            self.on_message_in(message.tp, message.offset, message)
        for event in taken:
            message = event.message
            self.on_stream_event_in(message.tp, message.offset, stream, event)
