"""Faust's conductor, handing a record to its stream's queue in one synchronous step.

For every record the fetch loop reads, Faust's conductor (``faust.transport.conductor``)
takes an asyncio lock to find the partition's handler, then that handler awaits four
coroutines: the flow control, the producer buffer's ebb (whose ``size`` reads the app's
settings on every call), the channel's ``decode``, and, when the queue is full, a ``put``.
Nearly always none of them waits: the lock is free, the flow open, the buffer low, the queue
has room. In ``bench.faust_floor``'s profile that path, with the coroutines made and stepped
for it, was about a third of Faust's reading (``docs/performance.md``).

This conductor checks those conditions first, without awaiting, and when they hold puts the
event on the queue at once, made as ``app.raw_schema`` makes it. It does so only for a
partition read by exactly one channel whose schema is ``RawSchema`` (every topic the worker's
agents read: ``app.channels.inbound``). Anything else (the lock held by a resubscription,
flow suspended by a rebalance, a producer buffer over its limit, a full queue, another
schema, two channels) goes the way Faust's handler goes, awaited, with the same outcome.
"""

from __future__ import annotations

from collections.abc import Callable, MutableSet
from typing import Any

from faust.transport.conductor import Conductor as FaustConductor
from faust.transport.conductor import ConductorCompiler
from faust.types import TP, EventT, Message

from app.raw_schema import RawSchema

__all__ = ["Conductor", "Handover"]

MakeEvent = Callable[[Message], EventT[Any]]


class Handover:
    """One partition's hand-over: ``deliver_now`` when nothing has to wait, else ``waiting``
    (Faust's handler for the partition), awaited; ``__call__`` tries the one, then the other."""

    __slots__ = (
        "_app",
        "_buffer",
        "_channel",
        "_channels",
        "_flow_open",
        "_make",
        "_on_pressure_drop",
        "_on_pressure_high",
        "_threaded",
        "waiting",
    )

    def __init__(self, conductor: FaustConductor, tp: TP, channels: MutableSet[Any]) -> None:
        app = conductor.app
        self._app = app
        #: the conductor's own set: a channel added or removed later is seen at the next record
        self._channels = channels
        #: Faust's handler: for whatever has to wait, or is not one raw channel's
        self.waiting = ConductorCompiler().build(conductor, tp, channels)
        self._flow_open = app.flow_control.is_active
        self._buffer = app.producer.buffer
        # A threaded producer's buffer is another queue: left to Faust's handler.
        self._threaded = bool(app.conf.producer_threaded)
        self._channel: Any = None
        self._make: MakeEvent | None = None
        consumer = app.consumer
        on_topic_buffer_full = app.sensors.on_topic_buffer_full

        # As Faust's handler: the queue past its high mark takes the partition out of the
        # fetch, and its drop back under half puts it in again. Faust's handler, when it
        # runs instead (flow suspended, the buffer over), registers its own pair: both are
        # then called, and what they do is idempotent, but for the sensors' count of full
        # buffers, which can count that episode twice.
        def on_pressure_high() -> None:
            on_topic_buffer_full(tp)
            consumer.on_buffer_full(tp)

        def on_pressure_drop() -> None:
            consumer.on_buffer_drop(tp)

        self._on_pressure_high = on_pressure_high
        self._on_pressure_drop = on_pressure_drop

    def _maker(self, channel: Any) -> MakeEvent | None:
        """How ``channel`` makes its events, if it reads raw (None: Faust's handler)."""
        if channel is not self._channel:
            self._channel = channel
            schema = getattr(channel, "schema", None)
            self._make = schema.event_maker(self._app) if isinstance(schema, RawSchema) else None
        return self._make

    def deliver_now(self, message: Message) -> bool:
        """Put ``message``'s event on its stream's queue if nothing has to wait; False (and
        nothing done) otherwise."""
        channels = self._channels
        if len(channels) != 1 or not self._flow_open() or self._threaded:
            return False
        buffer = self._buffer
        if buffer.pending.qsize() > buffer.max_messages:
            return False  # Faust's handler waits for the producer buffer to ebb
        for channel in channels:
            make = self._maker(channel)
            queue = channel.queue
            if make is None or queue.full():
                return False
            message.incref(1)
            queue.put_nowait_enhanced(
                make(message),
                on_pressure_high=self._on_pressure_high,
                on_pressure_drop=self._on_pressure_drop,
            )
        return True

    async def __call__(self, message: Message) -> None:
        if not self.deliver_now(message):
            await self.waiting(message)


class Conductor(FaustConductor):
    def _compile_message_handler(self) -> Any:
        if self.app.client_only:
            return super()._compile_message_handler()
        lock = self._tp_to_callback_lock
        handlers = self._tp_to_callback

        async def on_message(message: Message) -> None:
            # The lock is held only while a resubscription rebuilds the handlers; free, the
            # map is whole and can be read as Faust reads it under the lock.
            if lock.locked():
                async with lock:
                    handler = handlers[message.tp]
            else:
                handler = handlers[message.tp]
            if type(handler) is not Handover:
                await handler(message)
            elif not handler.deliver_now(message):  # inline: one coroutine less a record
                await handler.waiting(message)

        return on_message

    def _build_handler(self, tp: TP, channels: MutableSet[Any]) -> Any:
        return Handover(self, tp, channels)
