"""Where each partition an agent reads stands: what may have been processed before, and
whether anything was skipped on the way to the agent.

Two facts the crash-safety of the sync stage and the sinks rests on (``docs/architecture.md``,
"Delivery guarantees"); which inputs have their outputs in Kafka is the ack order's to say
(``app.agents.acks.acked_below``):

- **may have run**: a record below the partition's end offset as it stood when this worker
  first fetched from it (after start-up or a rebalance) may have been processed by the
  previous owner, whose offsets were not committed yet (a crash, a kill, a graceful stop that
  could not commit). Commands from such records are handed to the sinks as possibly executed
  (``attempt`` ≥ 2): a sink then checks before a write that has no idempotency key.
- **nothing skipped**: records of a partition reach the agent in an unbroken run from the
  committed offset; a record past a gap is not processed, and the partition is read again
  from the first missing one (``_rewind_until_back``). The rewind is never left to stall
  silently: a seek that fails or hangs is logged and made again, a rewind not back after
  ``WARN_AFTER_S`` is reported (and again every as long), one not back after
  ``GIVE_UP_AFTER_S`` stops the worker, whose partitions are then read again from their
  committed offsets. A partition paused in the consumer (a lane behind: ``app.agents.lanes``)
  fetches nothing: until it resumes it is not judged, and its rewind makes no seek and does
  not give up (its overdue warnings go on).
  Completions are logged; ``deskstream_rewinds_total`` counts each step.
  A record that comes a second time in one assignment (a seek back that landed after the
  records it went back for had arrived: they were slow, not lost) is dropped: processed
  again it would run twice as if new (``redelivery_dropped``). So is a record that comes
  before the committed offset is looked up in the assignment (the consumer's
  ``committed_at_assignment``): aiokafka fetches from the committed offset before Faust's
  ``perform_seek`` has looked it up, and Faust's record of it says "none" until then, which
  made the first record one past a gap from 0 and read the partition again from its log's
  start. The lookup's seek to the committed offset brings such a record again, and with
  nothing committed its seek to the log's start does.

Partitions revoked or assigned are forgotten: reading starts again at the committed offset
and the count starts afresh (what is decided from what is kept in ``app.agents.read_order``).
Seeking and committed offsets are Faust's and aiokafka's (faust.transport.consumer
``perform_seek``, ``_drain_messages``; aiokafka ``AIOKafkaConsumer.seek``,
``seek_to_committed``, which seeks only when an offset was committed:
https://aiokafka.readthedocs.io/en/stable/api.html#aiokafkaconsumer-class).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, cast

import faust
from faust.types import TP

from app.agents import read_order
from app.agents.acks import hold
from app.agents.read_order import PartitionReads, Rewind, Verdict
from app.metrics import Metrics

__all__ = ["Positions"]

log = logging.getLogger(__name__)

#: a seek back over a gap is made again when its first record has not come after this long
RESEEK_AFTER_S = 2.0
#: one seek (log start, seek, position) that takes longer failed: it is made again
SEEK_TIMEOUT_S = 30.0
#: how often the fetch positions are compared with what the agent has seen
TAIL_CHECK_S = 5.0


class Positions:
    def __init__(self, app: faust.App, metrics: Metrics, agent: str, topics: Iterable[str]) -> None:
        self._app = app
        self._topics = frozenset(topics)
        self._reads = PartitionReads()
        #: partitions with records dropped before their committed offset was looked up in
        #: this assignment, none processed since: a gap found next is theirs, not a loss
        self._dropped_early: set[TP] = set()
        self._agent = agent
        self._rewinds = metrics.rewinds
        self._open = metrics.rewinds_open.labels(agent)
        self._lag = metrics.consumer_lag.labels(agent)

        def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.forget(args[0])

        def forget_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # After an assignment Faust seeks each partition to its committed offset (when
            # there is one): the counts start again from there, and a rewind kept from
            # before, of a partition perhaps no longer ours, would never come back.
            self.forget(self._reads.tracked())

        app.on_partitions_revoked.connect(forget_revoked)
        app.on_partitions_assigned.connect(forget_assigned)

        async def check_tails(*_: Any) -> None:  # Faust passes the app to a timer
            self._report_lag()
            await self._check_tails()

        app.timer(TAIL_CHECK_S, name=f"positions-{agent}")(check_tails)

    def received(self, event: faust.EventT[Any]) -> bool:
        """Note ``event`` as read; False when it must not be processed: records before it
        were skipped, and the partition is being read again from the first one missing; or
        it came before its partition's committed offset was looked up (``Verdict.EARLY``)."""
        message = event.message
        tp = message.tp
        reading = self._reads.received(
            tp, message.offset, committed=self._committed, end=self._end, now=time.monotonic()
        )
        if reading.verdict is Verdict.SEEN:
            # A seek back landed after the records it went back for had come: their second
            # delivery is dropped (the first is being processed, and acked in its turn).
            self._rewinds.labels(self._agent, "redelivery_dropped").inc()
            return False
        if reading.verdict is Verdict.EARLY:
            # Fetched before the assignment's committed offset was looked up: the lookup's
            # seek brings it again. A count that keeps climbing is a lookup that never came.
            self._rewinds.labels(self._agent, "early_dropped").inc()
            self._dropped_early.add(tp)
            return False
        if reading.verdict is Verdict.REWIND:
            assert reading.rewind is not None
            if tp not in self._consumer.assignment():
                # Fetched before this worker lost the partition: its owner reads it.
                self._reads.forget([tp])
                return False
            self._start(tp, reading.rewind, "first_offset_seen")
            return False
        if reading.rewind is not None:
            self._completed(tp, reading.rewind)
        if self._dropped_early:
            self._dropped_early.discard(tp)
        return reading.verdict is Verdict.PROCESS

    @property
    def _consumer(self) -> Any:
        return cast(Any, self._app.consumer)

    def _committed(self, tp: TP) -> int | None:
        # Where reading starts in this assignment, None until it is known. Not Faust's
        # _committed_offset: it is emptied at a revocation and set again only at the end of
        # perform_seek, after aiokafka may have fetched from the committed offset already,
        # and it says None for "nothing committed" and for "not looked up yet" alike.
        start: int | None = self._consumer.committed_at_assignment(tp)
        return start

    def _end(self, tp: TP) -> int | None:
        end = self._consumer.highwater(tp)
        return int(end) if end is not None else None

    def _report_lag(self) -> None:
        """``deskstream_consumer_lag_records{agent}``: what a group tool shows as lag, for
        the partitions this worker holds (high watermark from the last fetch minus the
        committed offset, or the log's start with nothing committed yet). Measured here,
        every ``TAIL_CHECK_S``, rather than per event; a partition whose committed offset is
        not looked up yet is left out."""
        consumer = self._consumer
        behind = 0
        try:
            for tp in consumer.assignment():
                start = self._committed(tp) if tp.topic in self._topics else None
                if start is not None:
                    end = consumer.highwater(tp)
                    if end is not None:
                        # Faust's record, which its commits move on (None: nothing committed)
                        committed = consumer._committed_offset.get(tp)
                        behind += max(0, int(end) - int(start if committed is None else committed))
        except Exception as exc:  # a rebalance moved the assignment under us: next time
            log.debug("consumer lag not measured agent=%s error=%r", self._agent, exc)
            return
        self._lag.set(behind)

    async def _check_tails(self) -> None:
        """Records Faust drops while a rebalance is finishing (its streams skip what arrives
        before its flow control resumes, after the partitions are resumed and while it seeks
        to the committed offsets) still move the fetch position. With nothing committed,
        nothing seeks back, and when they were the partition's last records no later one
        reveals the gap: the partition sat read to its end with nothing processed (how the
        cluster suite stalled). So each of this agent's partitions whose fetch position stays
        past what the agent has seen, twice in a row, is read again like any other gap."""
        app = cast(Any, self._app)
        consumer = self._consumer
        if app.rebalancing or not consumer.flow_active:
            return  # positions move with the rebalance; look again once it is done
        try:
            async with asyncio.timeout(SEEK_TIMEOUT_S):
                for assigned in consumer.assignment():
                    tp = TP(assigned.topic, assigned.partition)
                    if tp.topic not in self._topics or self._reads.rewind(tp) is not None:
                        continue
                    if self._paused(tp):
                        # A lane of the agent is behind and holds the partition's records
                        # (what Faust dropped at the pause is found once it resumes).
                        continue
                    position = await consumer.position(assigned)
                    if position is None:
                        continue
                    started = self._reads.fetched_past(
                        tp, int(position), committed=self._committed(tp), now=time.monotonic()
                    )
                    if started is not None:
                        self._start(tp, started, "fetched_to_with_nothing_after")
        except Exception as exc:  # the next check looks again
            log.warning(
                "could not check where this agent's partitions are fetched agent=%s "
                "error=%r; looking again in %.0f s",
                self._agent,
                exc,
                TAIL_CHECK_S,
            )

    def _paused(self, tp: TP) -> bool:
        """Paused in the consumer (``pause_partitions``: a lane behind, ``app.agents.lanes``)."""
        return tp in getattr(self._consumer, "_paused_partitions", ())

    def _start(self, tp: TP, rewind: Rewind, seen_as: str) -> None:
        """Faust's fetcher can drop records while a rebalance suspends the flow and still
        count them as read (``Consumer._drain_messages``); a partition assigned again then
        resumes past them (aiokafka seeks to the committed offset only when there is one),
        and acks after them commit over them (the cluster suite lost commands that way).
        Read the partition again from the first missing record.

        A gap on a partition whose records the agent dropped before the committed offset was
        looked up, none processed since, is most likely those: the lookup's seek does not
        always bring them back first (a batch the fetch loop is still handing out past the
        seek moves Faust's read offset past them again), and this rewind is what does. It is
        told at info level; any other gap is a warning."""
        expected = tp in self._dropped_early
        self._dropped_early.discard(tp)
        log.log(
            logging.INFO if expected else logging.WARNING,
            "%s: reading them again agent=%s topic=%s partition=%s from_offset=%s %s=%s",
            "records dropped before the committed offset was looked up"
            if expected
            else "records skipped before they reached the agent",
            self._agent,
            tp.topic,
            tp.partition,
            rewind.to,
            seen_as,
            rewind.seen,
        )
        self._rewinds.labels(self._agent, "started").inc()
        self._open.inc()
        hold(asyncio.ensure_future(self._rewind_until_back(tp, rewind)))

    def _completed(self, tp: TP, rewind: Rewind) -> None:
        log.info(
            "skipped records are back: reading on agent=%s topic=%s partition=%s "
            "from_offset=%s after_s=%.1f seeks=%d failed_seeks=%d",
            self._agent,
            tp.topic,
            tp.partition,
            rewind.to,
            rewind.age(time.monotonic()),
            rewind.seeks,
            rewind.failures,
        )
        self._rewinds.labels(self._agent, "completed").inc()
        self._open.dec()

    async def _rewind_until_back(self, tp: TP, rewind: Rewind) -> None:
        """Seek back, and again every ``RESEEK_AFTER_S`` while the first missing record has
        not arrived: Faust's fetch loop may still be delivering a record it fetched before the
        seek, and then marks the partition read past the target (the records sought back to
        are filtered out as read). Ends once the record is back or the partition is
        forgotten; nothing in here may end it otherwise, or the partition's records would be
        held back for good (the cluster suite once stalled that way)."""
        try:
            while self._reads.rewind(tp) is rewind:
                if not self._paused(tp):  # a seek can bring nothing back while it is
                    await self._seek_back(tp, rewind)
                now = time.monotonic()
                if self._reads.rewind(tp) is not rewind:
                    break
                if self._paused(tp):
                    rewind.paused(now)  # no give-up while nothing can be fetched
                elif rewind.expired(now):
                    await self._give_up(tp, rewind)
                    return
                if rewind.overdue(now):
                    self._overdue(tp, rewind, now)
                await asyncio.sleep(RESEEK_AFTER_S)
        except asyncio.CancelledError:
            raise  # the worker is stopping
        except Exception as exc:  # a bug here must not leave the partition held back
            log.exception(
                "rewind failed agent=%s topic=%s partition=%s; stopping the worker so its "
                "partitions are read again from their committed offsets",
                self._agent,
                tp.topic,
                tp.partition,
            )
            await self._app.crash(exc)

    async def _seek_back(self, tp: TP, rewind: Rewind) -> None:
        """One seek to ``rewind.to``; a failure is logged and counted (the next round makes
        it again)."""
        consumer = self._consumer
        try:
            async with asyncio.timeout(SEEK_TIMEOUT_S):
                # A log whose first records retention removed starts later: go there.
                earliest = (await consumer.earliest_offsets(tp)).get(tp) or 0
                rewind.to = max(rewind.to, int(earliest))
                # seek_wait runs on the consumer's own thread (a plain seek from here did
                # not take effect); then the partition counts as read up to the target.
                await consumer.seek_wait({tp: rewind.to})
                consumer._read_offset[tp] = rewind.to or None
            rewind.seeks += 1
        except Exception as exc:  # includes TimeoutError, and a partition revoked meanwhile
            rewind.failed(repr(exc))
            self._rewinds.labels(self._agent, "seek_failed").inc()
            log.warning(
                "seek back over skipped records failed agent=%s topic=%s partition=%s "
                "to_offset=%s error=%r; trying again in %.0f s",
                self._agent,
                tp.topic,
                tp.partition,
                rewind.to,
                exc,
                RESEEK_AFTER_S,
            )

    def _overdue(self, tp: TP, rewind: Rewind, now: float) -> None:
        consumer = self._consumer
        self._rewinds.labels(self._agent, "overdue").inc()
        log.warning(
            "skipped records not back yet agent=%s topic=%s partition=%s from_offset=%s "
            "waiting_s=%.0f seeks=%d failed_seeks=%d last_error=%s assigned=%s paused=%s "
            "read_offset=%s; the partition's later records are held back meanwhile, the "
            "worker stops if they are not back in %.0f s (a pause restarts that count)",
            self._agent,
            tp.topic,
            tp.partition,
            rewind.to,
            rewind.age(now),
            rewind.seeks,
            rewind.failures,
            rewind.last_error,
            tp in consumer.assignment(),
            tp in getattr(consumer, "_paused_partitions", ()),
            consumer._read_offset.get(tp),
            max(0.0, rewind.left(now)),
        )

    async def _give_up(self, tp: TP, rewind: Rewind) -> None:
        # Still held back (and still counted open): processing past the gap now would let
        # the stop's commit pass over the missing records.
        self._rewinds.labels(self._agent, "given_up").inc()
        message = (
            f"records skipped on {tp.topic} partition {tp.partition} (from offset {rewind.to}) "
            f"did not come back within {read_order.GIVE_UP_AFTER_S:.0f} s of seeking back, "
            f"unpaused ({rewind.age(time.monotonic()):.0f} s since the gap was found, "
            f"{rewind.seeks} seeks, {rewind.failures} failed, last error {rewind.last_error}); "
            "the worker stops so that its partitions are read again from their committed "
            "offsets: restart it, and if this repeats, check the broker and this worker's "
            "consumer (its log has the seeks)"
        )
        log.error(message)
        await self._app.crash(RuntimeError(message))

    def may_have_run(self, event: faust.EventT[Any]) -> bool:
        message = event.message
        return self._reads.may_have_run(TP(message.topic, message.partition), message.offset)

    def forget(self, tps: Iterable[TP]) -> None:
        tps = list(tps)
        self._dropped_early.difference_update(tps)
        for tp, rewind in self._reads.forget(tps):
            log.info(
                "rewind ended by a rebalance (the partition is read again from its committed "
                "offset) agent=%s topic=%s partition=%s from_offset=%s seeks=%d",
                self._agent,
                tp.topic,
                tp.partition,
                rewind.to,
                rewind.seeks,
            )
            self._open.dec()
