"""Where each partition an agent reads stands: what may have been processed before, and
below which offset everything's outputs are in Kafka.

Two facts the crash-safety of the sync stage and the sinks rests on (``docs/architecture.md``,
"Delivery guarantees"):

- **may have run**: a record below the partition's end offset as it stood when this worker
  first fetched from it (after start-up or a rebalance) may have been processed by the
  previous owner, whose offsets were not committed yet (a crash, a kill, a graceful stop that
  could not commit). Commands from such records are handed to the sinks as possibly executed
  (``attempt`` ≥ 2): a sink then checks before a write that has no idempotency key.
- **delivered below**: the agent calls ``delivered`` once every send an input caused is
  acknowledged; the offset below which every input read here is delivered is the lowest one
  still in flight (records are read in offset order). Before the first record, the committed
  offset is where reading starts: nothing below it is read again.

Revoked partitions are forgotten: their next owner starts its own count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

__all__ = ["Positions"]


@dataclass
class _Partition:
    #: end offset at the first fetch after assignment: records below it may have run before
    replay_below: int
    #: the next offset to be read
    next_offset: int
    #: offsets read whose outputs are not acknowledged yet, in reading (= offset) order
    in_flight: OrderedDict[int, None] = field(default_factory=OrderedDict)


class Positions:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._partitions: dict[TP, _Partition] = {}

        def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.forget(args[0])

        app.on_partitions_revoked.connect(forget_revoked)

    def received(self, event: faust.EventT[Any]) -> TP:
        message = event.message
        tp = TP(message.topic, message.partition)
        part = self._partitions.get(tp)
        if part is None:
            end = self._app.consumer.highwater(tp)
            part = self._partitions[tp] = _Partition(
                replay_below=int(end) if end is not None else message.offset + 1,
                next_offset=message.offset,
            )
        part.in_flight[message.offset] = None
        part.next_offset = message.offset + 1
        return tp

    def delivered(self, event: faust.EventT[Any]) -> None:
        message = event.message
        part = self._partitions.get(TP(message.topic, message.partition))
        if part is not None:
            part.in_flight.pop(message.offset, None)

    def may_have_run(self, event: faust.EventT[Any]) -> bool:
        message = event.message
        part = self._partitions.get(TP(message.topic, message.partition))
        return part is None or message.offset < part.replay_below

    def delivered_below(self, topic: str, partition: int) -> int:
        """Every input below this offset has its outputs in Kafka (0 for a partition this
        worker has not read since it was assigned: nothing is known)."""
        part = self._partitions.get(TP(topic, partition))
        if part is None:
            return 0
        return next(iter(part.in_flight), part.next_offset)

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._partitions.pop(TP(tp.topic, tp.partition), None)
