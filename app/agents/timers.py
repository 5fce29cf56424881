"""timers: ``deskstream.timers`` → ``deskstream.sync``, each timer once it is due.

A timer (``schemas.models.Timer``) is a decision the sync stage asked to take again later: a
contact create held for a match by email (``streams.flows.holds``). It waits here, in Kafka,
rather than in the sync agent, whose partition would otherwise hold its commits (and its
next owner's work) for the whole wait: a timer's offset is acked only once the timer is on
``deskstream.sync``, so a worker that dies, stops or loses the partition in a rebalance
leaves it uncommitted, and the next owner reads it again and sends it when due (at once when
that time has passed). The sleep here only decides when this worker sends; nothing depends
on it surviving. A copy sent twice (a crash between the send and the commit) is dropped by
the sync stage, which remembers timer ids like event ids.

Commits of a partition lag behind its oldest pending timer: at most the longest hold.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import Revocations, ack_when_delivered, expect, hold
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.metrics import Metrics
from schemas.codec import decode_as
from schemas.errors import SchemaError
from schemas.models import Timer

__all__ = ["register_timers"]

log = logging.getLogger(__name__)


class _Pending:
    """The timers this worker waits for, per partition (so a revoked one's are dropped)."""

    def __init__(self, metrics: Metrics) -> None:
        self._tasks: dict[tuple[str, int], set[asyncio.Future[Any]]] = {}
        self._gauge = metrics.timers_pending

    def add(self, partition: tuple[str, int], task: asyncio.Future[Any]) -> None:
        tasks = self._tasks.setdefault(partition, set())
        tasks.add(task)
        self._gauge.inc()

        def done(_: asyncio.Future[Any]) -> None:
            if task in tasks:
                tasks.discard(task)
                self._gauge.dec()

        task.add_done_callback(done)

    def drop(self, partitions: list[tuple[str, int]]) -> int:
        """Stop waiting for the timers of ``partitions``: their next owner reads them again."""
        dropped = 0
        for partition in partitions:
            tasks = self._tasks.pop(partition, set())
            for task in list(tasks):
                tasks.discard(task)  # so its done callback counts it no more
                task.cancel()
                self._gauge.dec()
                dropped += 1
        return dropped


def register_timers(
    app: faust.App, channels: Channels, metrics: Metrics, revocations: Revocations
) -> faust.types.AgentT[Any]:
    topic_name = channels.timers.get_topic_name()
    positions = Positions(app, metrics, "timers", [topic_name])
    pending = _Pending(metrics)

    async def send_when_due(event: faust.EventT[Any], timer: Timer) -> None:
        delay = (timer.due_at - datetime.now(UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            sent = await channels.sync.send(key=event.key, value=timer)
        except Exception as exc:
            # Unsent, the timer holds its partition's commits for good: start again instead
            # (the timer is read again and sent by whoever owns the partition then).
            log.critical(
                "a due timer could not be sent; crashing so it is read again "
                "timer=%s link=%s error=%r",
                timer.timer_id,
                timer.link_id,
                exc,
            )
            await app.crash(exc)
            return
        metrics.timers_fired.labels(timer.purpose).inc()
        ack_when_delivered(app, event, [sent])

    async def drop_revoked(revoked: set[Any]) -> None:
        mine = [(tp.topic, tp.partition) for tp in revoked if tp.topic == topic_name]
        dropped = pending.drop(mine)
        if dropped:
            log.info("timers left to the partitions' next owner count=%d", dropped)

    revocations.before_commit(drop_revoked)

    @app.agent(inbound(app, channels.timers), name="timers")
    async def fire_when_due(stream: faust.StreamT[Any]) -> None:
        async for event in cast(faust.Stream[bytes], stream).noack().events():
            if not positions.received(event):
                continue
            try:
                timer = decode_as(event.value, Timer)
            except SchemaError as exc:
                # Our own sync stage wrote it: version skew. Dropping it loses one re-decision,
                # which the link's next input takes anyway (a hold past its end is over).
                log.error(
                    "timers skipped an unreadable timer key=%s offset=%s error=%s",
                    event.key,
                    event.message.offset,
                    exc,
                )
                ack_when_delivered(app, event, [])
                continue
            # Its place in the partition's ack order now: nothing after it is committed before
            # it is sent, however long it waits.
            expect(event)
            message = event.message
            task = hold(asyncio.ensure_future(send_when_due(event, timer)))
            pending.add((message.topic, message.partition), task)

    return fire_when_due
