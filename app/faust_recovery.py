"""Faust's table recovery, with a rebalance that lands mid-recovery restarting it instead of
crashing the worker.

Faust's ``Recovery`` shares its standby partitions and their offsets with ``on_rebalance``:
a rebalance adds its newly assigned standby changelog partitions with no offset yet (``None``,
filled in by the next recovery's ``_build_offsets``) and sets ``signal_recovery_start``. If it
lands after this recovery built its offsets, while it waits for the active tables to catch up,
the standby seek that follows passes ``None`` to aiokafka, which raises ``ValueError: Offset
must be a positive integer``; mode's ``wait_first`` propagates that error before it looks at the
rebalance signal that is set beside it, so the recovery service crashes and takes the worker
with it (``make soak``, rolling restart: a second rebalance 3 s after the first).

The offsets in hand are the previous assignment's: the right move is what Faust does at its
other checkpoints, ``RebalanceAgain``, so the recovery loop starts over for the new one.
"""

from __future__ import annotations

from collections import Counter

import faust
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP
from faust.types.transports import ConsumerT

__all__ = ["RebalanceSafeRecovery", "TableManager"]


class RebalanceSafeRecovery(Recovery):
    async def _seek_offsets(
        self, consumer: ConsumerT, tps: set[TP], offsets: Counter[TP], title: str
    ) -> None:
        if self.signal_recovery_start.is_set():
            raise RebalanceAgain()  # these offsets are the previous assignment's
        await super()._seek_offsets(consumer, tps, offsets, title)


class TableManager(faust.tables.TableManager):
    """Faust's table manager with :class:`RebalanceSafeRecovery` (``faust.App(TableManager=)``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = RebalanceSafeRecovery(
                self.app, self, beacon=self.beacon, loop=self.loop
            )
        return self._recovery
