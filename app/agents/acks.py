"""Ack an event only after Kafka has acknowledged everything it produced.

Faust's own at-least-once acks an event when the agent moves on and, before committing,
waits for in-flight sends with ``asyncio.wait``, which ignores failures: a send that fails
after the producer's retries would leave its source offset committed and the output lost.
Agents here run on ``stream.noack()`` and call ``ack_when_delivered``: the event's offset
becomes committable only when every send it caused is acknowledged. A failed send is never
acked, so its offset is never committed and the event is processed again after the worker
restarts. Sends stay pipelined: nothing waits in the agent's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust

__all__ = ["ack_when_delivered", "hold"]

log = logging.getLogger(__name__)

# asyncio keeps only weak references to tasks: hold them until they are done.
_in_flight: set[asyncio.Future[Any]] = set()


def ack_when_delivered(
    app: faust.App,
    event: faust.EventT[Any],
    sends: Sequence[Awaitable[Any]],
    *,
    on_delivered: Callable[[faust.EventT[Any]], None] | None = None,
) -> None:
    """Ack ``event`` once every send is acknowledged (then ``on_delivered(event)``)."""
    if not sends:
        event.ack()
        if on_delivered is not None:
            on_delivered(event)
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
        event.ack()
        if on_delivered is not None:
            on_delivered(event)

    hold(asyncio.ensure_future(asyncio.gather(*sends))).add_done_callback(_done)


def hold(future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Keep a reference to ``future`` until it is done (asyncio holds only weak ones)."""
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)
    return future
