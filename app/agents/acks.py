"""Ack an event only after Kafka has acknowledged everything it produced.

Faust's own at-least-once acks an event when the agent moves on and, before committing,
waits for in-flight sends with ``asyncio.wait``, which ignores failures: a send that fails
after the producer's retries would leave its source offset committed and the output lost.
Agents here run on ``stream.noack()`` and call ``ack_when_delivered``: the event's offset
becomes committable only when every send it caused is acknowledged. A failed send is never
acked, so its offset is never committed and the event is processed again after the worker
restarts. Sends stay pipelined: nothing waits in the agent's loop. Acks go out in offset
order per partition (``_InOrder``), because Faust's commit can step over one unacked event.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import faust

__all__ = ["ack_when_delivered", "expect", "follow_rebalances", "hold"]

log = logging.getLogger(__name__)

OnDelivered = Callable[[faust.EventT[Any]], None]

# asyncio keeps only weak references to tasks: hold them until they are done.
_in_flight: set[asyncio.Future[Any]] = set()


class _InOrder:
    """Acks each partition's events in offset order.

    Faust commits the first run of consecutive acked offsets, and lets that run start one
    past the committed offset (``Consumer._new_offset`` refuses only a gap of two or more):
    an event acked after its successor can be committed over while its outputs are still in
    flight, and a crash then loses them. Holding each ack until every earlier event of the
    partition is acked closes that window (and costs nothing: the commit could not have
    passed the earlier event anyway).
    """

    def __init__(self) -> None:
        #: per partition, offset → (event, delivered, on_delivered), in reading order
        self._open: dict[tuple[str, int], OrderedDict[int, list[Any]]] = {}

    def register(self, event: faust.EventT[Any], on_delivered: OnDelivered | None) -> None:
        message = event.message
        queue = self._open.setdefault((message.topic, message.partition), OrderedDict())
        entry = queue.get(message.offset)
        if entry is not None and entry[0] is event:
            entry[2] = on_delivered  # expected at reading, now handed its outputs
        else:
            queue[message.offset] = [event, False, on_delivered]

    def delivered(self, event: faust.EventT[Any]) -> None:
        message = event.message
        queue = self._open.get((message.topic, message.partition))
        entry = queue.get(message.offset) if queue is not None else None
        if queue is None or entry is None or entry[0] is not event:
            # Its partition was revoked meanwhile: whoever owns it now reads it again, and an
            # ack from here could let Faust commit over an earlier record of theirs.
            return
        entry[1] = True
        while queue:
            offset, (ready, done, callback) = next(iter(queue.items()))
            if not done:
                break
            del queue[offset]
            ready.ack()
            if callback is not None:
                callback(ready)

    def forget(self, tps: Iterable[Any]) -> None:
        for tp in tps:
            self._open.pop((tp.topic, tp.partition), None)


_order = _InOrder()


def expect(event: faust.EventT[Any]) -> None:
    """Take ``event``'s place in its partition's ack order now, as it is read: an agent that
    hands events to other tasks (the sink lanes) calls this in reading order, so no later
    event can be acked, and committed, before this one."""
    _order.register(event, None)


def follow_rebalances(app: faust.App) -> None:
    """Forget the ack order of revoked partitions (their next owner reads them again)."""

    def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        _order.forget(args[0])

    app.on_partitions_revoked.connect(forget_revoked)


def ack_when_delivered(
    app: faust.App,
    event: faust.EventT[Any],
    sends: Sequence[Awaitable[Any]],
    *,
    on_delivered: OnDelivered | None = None,
) -> None:
    """Ack ``event`` once every send is acknowledged and every earlier event of its
    partition is acked (then ``on_delivered(event)``). Call it for each event in the order
    the events were read."""
    _order.register(event, on_delivered)
    if not sends:
        _order.delivered(event)
        return

    def _done(future: asyncio.Future[list[Any]]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            log.critical(
                "output not acknowledged; crashing so the event is reprocessed "
                "topic=%s partition=%s offset=%s error=%r",
                event.message.topic,
                event.message.partition,
                event.message.offset,
                error,
            )
            hold(asyncio.ensure_future(app.crash(error or asyncio.CancelledError())))
            return
        _order.delivered(event)

    hold(asyncio.ensure_future(asyncio.gather(*sends))).add_done_callback(_done)


def hold(future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Keep a reference to ``future`` until it is done (asyncio holds only weak ones)."""
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)
    return future
