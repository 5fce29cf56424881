"""Ack an event only after Kafka has acknowledged everything it produced, in offset order,
and commit what is acked when partitions are taken away.

Faust's own at-least-once acks an event when the agent moves on and, before committing,
waits for in-flight sends with ``asyncio.wait``, which ignores failures: a send that fails
after the producer's retries would leave its source offset committed and the output lost.
Agents here run on ``stream.noack()`` and call ``ack_when_delivered``: the event's offset
becomes committable only when every send it caused is acknowledged. A failed send is never
acked, so its offset is never committed and the event is processed again after the worker
restarts. Sends stay pipelined: nothing waits in the agent's loop. Acks go out in offset
order per partition (``_InOrder``), because Faust's commit can step over an unacked event;
``Revocations`` commits at a rebalance, which Faust does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

import faust
from faust.types import TP

__all__ = [
    "InHand",
    "Revocations",
    "ack_all_when_delivered",
    "ack_when_delivered",
    "acked_below",
    "expect",
    "hold",
    "revoked_since_read",
    "settle",
]

log = logging.getLogger(__name__)

OnDelivered = Callable[[faust.EventT[Any]], None]
#: finishes what is in progress on revoked partitions before they are committed
Release = Callable[[set[Any]], Awaitable[None]]
#: how long a revocation waits for outputs still on their way before it commits
SETTLE_TIMEOUT_S = 10.0
#: set on the app once a stop has been told of outputs it left unsent
_STOP_TOLD = "_deskstream_stop_told"

# asyncio keeps only weak references to tasks: hold them until they are done.
_in_flight: set[asyncio.Future[Any]] = set()

#: read, not handed its outputs yet; outputs on their way to Kafka; one of its outputs is a
#: re-decision sent on purpose later (``deferred``); every output acknowledged
_READ, _SENT, _DEFERRED, _DONE = "read", "sent", "deferred", "done"


class _InOrder:
    """Acks each partition's events in offset order.

    Faust commits the first run of consecutive acked offsets, and lets that run start one
    past the committed offset (``Consumer._new_offset`` refuses only a gap of two or more, and
    checks nothing on a partition never committed): an event acked after its successor, or
    never acked, can be committed over while its outputs are still in flight or never made,
    and a crash then loses them. Holding each ack until every earlier event of the partition
    is acked closes that window (and costs nothing: the commit could not have passed the
    earlier event anyway). Faust's commit also fills a gap it saw with acks of its own
    (``Consumer._add_gap``): the commits of these topics say ``commit_offset`` instead
    (``app.kafka_transport``).
    """

    def __init__(self) -> None:
        #: per partition, offset → [event, state, on_delivered], in reading order
        self._open: dict[tuple[str, int], OrderedDict[int, list[Any]]] = {}
        #: per partition, the offset after the last event acked (what a commit may say)
        self.acked_through: dict[tuple[str, int], int] = {}
        #: per partition, the consumer generation in which it was last taken from this worker
        self._revoked_in: dict[tuple[str, int], int] = {}
        #: the topics whose events are acked here: their commits are this order's to say
        self.topics: set[str] = set()

    def revoked_since_read(self, message: Any) -> bool:
        """Was ``message``'s partition taken from this worker after it was read? (A message
        carries the consumer generation it was fetched in, and a revocation ends one.)"""
        revoked_in = self._revoked_in.get((message.topic, message.partition))
        generation = message.generation_id
        return revoked_in is not None and generation is not None and generation <= revoked_in

    def register(
        self, event: faust.EventT[Any], on_delivered: OnDelivered | None, state: str
    ) -> bool:
        """False, and nothing registered, for an event read before its partition was revoked:
        acked now, it would start its partition's order again after ``forget`` and reach
        Faust's commit, or ours at the next revocation, with offsets of an old assignment."""
        message = event.message
        if self.revoked_since_read(message):
            return False
        tp = (message.topic, message.partition)
        queue = self._open.get(tp)
        if queue is None:
            queue = self._open[tp] = OrderedDict()
            self.topics.add(message.topic)
        entry = queue.get(message.offset)
        if entry is not None and entry[0] is event:
            entry[1:] = [state, on_delivered]  # expected at reading, now handed its outputs
        else:
            queue[message.offset] = [event, state, on_delivered]
        return True

    def delivered_all(self, events: Iterable[faust.EventT[Any]]) -> None:
        """Every output of each of ``events`` is acknowledged: ack what is now first in its
        partition's order, each partition swept once."""
        swept: dict[tuple[str, int], OrderedDict[int, list[Any]]] = {}
        for event in events:
            message = event.message
            tp = (message.topic, message.partition)
            queue = self._open.get(tp)
            entry = queue.get(message.offset) if queue is not None else None
            if queue is None or entry is None or entry[0] is not event:
                # Its partition was revoked meanwhile: whoever owns it now reads it again, and
                # an ack from here could let Faust commit over an earlier record of theirs.
                continue
            entry[1] = _DONE
            swept[tp] = queue
        for tp, queue in swept.items():
            while queue:
                offset, (ready, state, callback) = next(iter(queue.items()))
                if state != _DONE:
                    break
                del queue[offset]
                ready.ack()
                self.acked_through[tp] = offset + 1
                if callback is not None:
                    callback(ready)

    def in_flight(self, tps: Iterable[Any]) -> int:
        """Events of ``tps`` whose outputs are sent and not acknowledged yet (not those
        waiting for a deferred re-decision: see ``ack_when_delivered``)."""
        return sum(
            1
            for tp in tps
            for entry in self._open.get((tp.topic, tp.partition), {}).values()
            if entry[1] == _SENT
        )

    def forget(self, tps: Iterable[Any], *, generation: int) -> None:
        """``tps`` were revoked in consumer ``generation``: what was read of them until then
        is never acked here (``register``)."""
        for tp in tps:
            self._open.pop((tp.topic, tp.partition), None)
            self.acked_through.pop((tp.topic, tp.partition), None)
            self._revoked_in[(tp.topic, tp.partition)] = generation


_order = _InOrder()


def revoked_since_read(event: faust.EventT[Any]) -> bool:
    """Was ``event``'s partition taken from this worker after the event was read? What it
    would write to a table is then dropped: the partition's next owner reads it again, from
    a state this worker must not write over."""
    return _order.revoked_since_read(event.message)


def acked_below(topic: str, partition: int) -> int:
    """Every event of the partition read below this offset is acked, its outputs in Kafka (0
    before the first ack since the partition was assigned: nothing is known)."""
    return _order.acked_through.get((topic, partition), 0)


def commit_offset(topic: str, partition: int) -> int | None:
    """What a commit of the partition says when its topic's events are acked here: one past
    the last event acked in order, None when nothing was acked since it was assigned (or
    since it was revoked)."""
    return _order.acked_through.get((topic, partition))


def acks_in_order(topic: str) -> bool:
    """Whether ``topic``'s events are acked here (``commit_offset`` then says its commits)."""
    return topic in _order.topics


def expect(event: faust.EventT[Any]) -> None:
    """Take ``event``'s place in its partition's ack order now, as it is read: an agent that
    hands events to other tasks (the sink lanes) calls this in reading order, so no later
    event can be acked, and committed, before this one."""
    _order.register(event, None, _READ)


def ack_when_delivered(
    app: faust.App,
    event: faust.EventT[Any],
    sends: Sequence[Awaitable[Any]],
    *,
    on_delivered: OnDelivered | None = None,
    deferred: bool = False,
) -> None:
    """Ack ``event`` once every send is acknowledged and every earlier event of its
    partition is acked (then ``on_delivered(event)``). Call it for each event in the order
    the events were read (or ``expect`` them in that order).

    ``deferred``: one of ``sends`` waits on purpose before it sends (a re-decision asked for
    seconds later). A revocation does not wait for such an event (``settle``): it stays
    unacked, so its partition's next owner reads it again and asks again, under the same
    deterministic id (a copy this worker still sends is dropped by the sync stage's dedupe).
    Waiting for it held every takeover up to ``SETTLE_TIMEOUT_S``."""
    ack_all_when_delivered(app, [event], sends, on_delivered=on_delivered, deferred=deferred)


def ack_all_when_delivered(
    app: faust.App,
    events: Sequence[faust.EventT[Any]],
    sends: Sequence[Awaitable[Any]],
    *,
    on_delivered: OnDelivered | None = None,
    deferred: bool = False,
) -> None:
    """``ack_when_delivered`` for events read together (a batch, in reading order) and the
    sends they caused together: each is acked once every one of ``sends`` is acknowledged."""
    state = _DEFERRED if deferred else _SENT
    # An event read before its partition was revoked is left to the partition's next owner.
    events = [event for event in events if _order.register(event, on_delivered, state)]
    if not events:
        return
    if not sends:
        _order.delivered_all(events)
        return

    def _done(future: asyncio.Future[list[Any]]) -> None:
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            first = events[0].message
            if app.should_stop:
                # A stop (a deploy's SIGTERM) or a crash already under way: the producer is
                # closing under batches still in flight. Nothing to crash for: unacked, the
                # events are read again by their partitions' next owner. A busy worker's
                # agents can have hundreds of batches in hand: the first is told, at debug
                # level the rest.
                told = getattr(app, _STOP_TOLD, False)
                setattr(app, _STOP_TOLD, True)
                log.log(
                    logging.DEBUG if told else logging.INFO,
                    "worker stopping: output not sent, the events stay unacknowledged and are "
                    "read again by the partition's next owner (any further batches at debug "
                    "level) topic=%s partition=%s offset=%s events=%d error=%r",
                    first.topic,
                    first.partition,
                    first.offset,
                    len(events),
                    error,
                )
                return
            log.critical(
                "output not acknowledged; crashing so the event is reprocessed "
                "topic=%s partition=%s offset=%s events=%d error=%r",
                first.topic,
                first.partition,
                first.offset,
                len(events),
                error,
            )
            hold(asyncio.ensure_future(app.crash(error or asyncio.CancelledError())))
            return
        _order.delivered_all(events)

    hold(asyncio.ensure_future(asyncio.gather(*sends))).add_done_callback(_done)


async def settle(app: faust.App, tps: Iterable[Any]) -> None:
    """Wait until the events of ``tps`` whose outputs were sent are acked (at most
    ``SETTLE_TIMEOUT_S``: what is still out then is read again by the next owner), except
    those waiting for a deferred re-decision, which the next owner asks for again."""
    tps = list(tps)
    await app.producer.flush()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            # Acks come from delivery callbacks: poll rather than thread an event through.
            while _order.in_flight(tps):  # noqa: ASYNC110
                await asyncio.sleep(0.01)


class InHand:
    """An agent's batch from the moment it is taken until its events are handed to
    ``ack_all_when_delivered``: ``with in_hand:`` around the batch's work. A revocation waits
    for it (``Revocations``); a batch that raises is told to ``on_failure``."""

    __slots__ = ("_idle", "_on_failure", "agent")

    def __init__(self, agent: str, on_failure: Callable[[str, Exception], None]) -> None:
        self.agent = agent
        self._on_failure = on_failure
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self._idle.clear()

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self._idle.set()
        if isinstance(error, Exception):
            self._on_failure(self.agent, error)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    async def wait(self) -> None:
        await self._idle.wait()


class Revocations:
    """What a worker does when partitions are taken from it (a rebalance, or its own stop),
    in this order: the batches agents have in hand are finished (``in_hand``), the hooks finish
    what is in progress (``before_commit``), the outputs on their way are awaited (each at
    most ``SETTLE_TIMEOUT_S``), what is acked is **committed**, and the ack order of the
    partitions is forgotten.

    Batches in hand are waited for because a batch writes table state (normalize's dedupe,
    the sync stage's links) as well as outputs. Finished after the partition's next owner had
    restored the table, its changelog records would land after that owner's and restore, at
    the next recovery anywhere, an older state than the one its committed inputs made; and
    its acks would reach a partition order already forgotten. The group cannot hand the
    partition on before this revocation returns. A batch still in hand after the wait (a
    platform call slow to answer) is dropped when it ends: its events are never acked here
    (``register``) and its table writes are skipped (``revoked_since_read``).

    Faust commits on a timer and at a stop (before the agents' last acks: a command finished
    during a graceful stop was executed again by the next owner), and on a revocation its
    consumer drops the acked
    offsets of the revoked partitions before anyone can commit them (``on_partitions_revoked``
    pops ``_acked``): every rebalance handed the next owner up to a commit interval of inputs
    to process again (a rolling restart re-sent and re-executed commands at every step). So
    the offsets come from our own ack order and are committed through the consumer's driver.
    """

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._hooks: list[Release] = []
        self._in_hand: list[InHand] = []

        async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            await self.revoked(set(args[0]))

        async def on_stop(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # Faust sends this once its fetcher has stopped and before the agents and the
            # consumer stop: the last moment the consumer can still commit.
            await self.revoked(set(app.consumer.assignment()))

        app.on_partitions_revoked.connect(on_revoked)
        app.on_before_shutdown.connect(on_stop)

    def before_commit(self, hook: Release) -> None:
        self._hooks.append(hook)

    def in_hand(self, agent: str) -> InHand:
        """What ``agent`` marks its batches with, for revocations to wait for them."""
        held = InHand(agent, self._batch_failed)
        self._in_hand.append(held)
        return held

    def _batch_failed(self, agent: str, error: Exception) -> None:
        """A batch that raised (a send refused before it left, a bug; the chat relay waits
        a desk's outage out rather than raise) leaves its events unacked. Faust would restart
        the agent in this process, and every later ack of their partitions would wait for
        them until a rebalance, which reads them again (and normalize's dedupe holds their
        ids as in flight meanwhile: it would drop them then as copies). The worker crashes
        instead, as on a failed send (``ack_all_when_delivered``): its partitions are read
        again from their committed offsets, by its next process or by the others."""
        if self._app.should_stop:
            return  # a stop or a crash under way: the events are read again all the same
        log.critical(
            "batch failed agent=%s error=%r; crashing the worker so its records are read "
            "again from the committed offsets (restart it if no supervisor does; the error "
            "says what failed)",
            agent,
            error,
        )
        hold(asyncio.ensure_future(self._app.crash(error)))

    async def _batches_finished(self) -> None:
        busy = [held for held in self._in_hand if held.busy]
        if not busy:
            return
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                for held in busy:
                    await held.wait()
        except TimeoutError:
            log.warning(
                "revocation: a batch still in hand after %.0f s (a platform call slow to "
                "answer?) agents=%s; it goes on, but its acks and table writes for the revoked "
                "partitions are dropped, and their next owner reads those events again",
                SETTLE_TIMEOUT_S,
                ",".join(held.agent for held in busy if held.busy),
            )

    async def revoked(self, tps: set[Any]) -> None:
        await self._batches_finished()
        for hook in self._hooks:
            await hook(tps)
        await settle(self._app, tps)
        consumer = cast(Any, self._app.consumer)
        offsets = {}
        for tp in tps:
            through = _order.acked_through.get((tp.topic, tp.partition))
            key = TP(tp.topic, tp.partition)
            # Where this assignment started reading (app.kafka_transport): a commit never takes
            # the group back, whatever a bug upstream made of the ack order.
            start = consumer.committed_at_assignment(key)
            if through is not None and start is not None and through > start:
                offsets[key] = through
        committed = False
        if offsets:
            try:
                # The driver's commit: Faust's own bookkeeping for these is gone already.
                committed = await consumer._commit(offsets)
            except Exception:  # the next owner re-reads what was not committed: log, go on
                log.exception(
                    "commit at revocation failed; the next owner re-reads from the last commit"
                )
        log.info(
            "partitions revoked count=%d committed=%d/%d still_in_flight=%d",
            len(tps),
            len(offsets) if committed else 0,
            len(offsets),
            _order.in_flight(tps),
        )
        _order.forget(tps, generation=self._app.consumer_generation_id)


def hold(future: asyncio.Future[Any]) -> asyncio.Future[Any]:
    """Keep a reference to ``future`` until it is done (asyncio holds only weak ones)."""
    _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)
    return future
