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
  from the first missing one (``_rewind``).

Revoked partitions are forgotten: their next owner starts its own count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP

from app.agents.acks import hold

__all__ = ["Positions"]

log = logging.getLogger(__name__)

#: a seek back over a gap is made again when its first record has not come after this long
RESEEK_AFTER_S = 2.0


@dataclass
class _Rewind:
    #: the first missing offset, where reading starts again
    to: int


@dataclass
class _Partition:
    #: end offset at the first fetch after assignment: records below it may have run before
    replay_below: int
    #: the next offset to be read
    next_offset: int


class Positions:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._partitions: dict[TP, _Partition] = {}
        #: partition → the seek back over a gap, until its first missing record arrives
        self._rewinding: dict[TP, _Rewind] = {}

        def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.forget(args[0])

        app.on_partitions_revoked.connect(forget_revoked)

    def received(self, event: faust.EventT[Any]) -> bool:
        """Note ``event`` as read; False when it must not be processed: records before it
        were skipped, and the partition is being read again from the first one missing."""
        message = event.message
        tp = TP(message.topic, message.partition)
        offset = message.offset
        rewinding = self._rewinding.get(tp)
        if rewinding is not None:
            if offset > rewinding.to:
                return False  # after the gap: it comes again once the seek has landed
            del self._rewinding[tp]  # back at the first missing record (or before it)
        part = self._partitions.get(tp)
        expected = self._committed(tp) if part is None else part.next_offset
        if rewinding is None and offset > expected:
            self._rewind(tp, expected, offset)
            return False
        if part is None:
            end = self._app.consumer.highwater(tp)
            part = self._partitions[tp] = _Partition(
                replay_below=int(end) if end is not None else offset + 1,
                next_offset=offset,
            )
        part.next_offset = max(part.next_offset, offset + 1)
        return True

    def _committed(self, tp: TP) -> int:
        # Faust's record of the committed offset, set when the partition was assigned (None
        # for "none" and for 0 alike: both mean the start).
        committed = cast(Any, self._app.consumer)._committed_offset.get(tp)
        return int(committed or 0)

    def _rewind(self, tp: TP, to: int, seen: int) -> None:
        """Faust's fetcher can drop records while a rebalance suspends the flow and still
        count them as read (``Consumer._drain_messages``); a partition assigned again then
        resumes past them, and acks after them commit over them (the cluster suite lost
        commands that way). Read the partition again from the first missing record."""
        log.warning(
            "records skipped before they reached the agent: reading them again "
            "topic=%s partition=%s from_offset=%s first_offset_seen=%s",
            tp.topic,
            tp.partition,
            to,
            seen,
        )
        rewinding = self._rewinding[tp] = _Rewind(to)
        hold(asyncio.ensure_future(self._rewind_until_back(tp, rewinding)))

    async def _rewind_until_back(self, tp: TP, rewinding: _Rewind) -> None:
        """Seek back, and again every ``RESEEK_AFTER_S`` while the first missing record has
        not arrived: Faust's fetch loop may still be delivering a record it fetched before the
        seek, and then marks the partition read past the target (the records sought back to
        are filtered out as read). Ends once the record is back, or the partition revoked."""
        consumer = cast(Any, self._app.consumer)
        while self._rewinding.get(tp) is rewinding:
            # A log whose first records retention removed starts later: go there instead.
            earliest = (await consumer.earliest_offsets(tp)).get(tp) or 0
            rewinding.to = max(rewinding.to, int(earliest))
            # seek_wait runs on the consumer's own thread (a plain seek from here did not
            # take effect); then the partition counts as read up to the target, not past it.
            await consumer.seek_wait({tp: rewinding.to})
            consumer._read_offset[tp] = rewinding.to or None
            await asyncio.sleep(RESEEK_AFTER_S)

    def may_have_run(self, event: faust.EventT[Any]) -> bool:
        message = event.message
        part = self._partitions.get(TP(message.topic, message.partition))
        return part is None or message.offset < part.replay_below

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._partitions.pop(TP(tp.topic, tp.partition), None)
            self._rewinding.pop(TP(tp.topic, tp.partition), None)
