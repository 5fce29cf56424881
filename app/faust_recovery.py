"""Faust's table recovery, with a rebalance that lands mid-recovery restarting it instead of
crashing the worker, and a recovery that stopped receiving records noticed and re-read.

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

A recovery whose active changelog partitions stop receiving records is noticed too
(``app.recovery_watch``): after ``stall_after_s`` with no record for a partition that still lacks
some, the worker logs a warning with the state of the fetch path and re-reads that partition from
its last applied record. Faust would wait for ever, with the worker not ready and its partitions'
traffic piling up; the re-read is a seek, which also resets the read offset below which Faust's
fetch loop drops records.
"""

from __future__ import annotations

from collections import Counter
from time import monotonic  # Faust's recovery clock: its event times are on it
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP
from faust.types.transports import ConsumerT
from mode import Service
from mode.utils.times import Seconds

from app.recovery_watch import describe_fetch_path, stalled_partitions

__all__ = ["RebalanceSafeRecovery", "TableManager"]


#: A partition still lacking records that received none for this long is stalled. Records a
#: partition has arrive in milliseconds (a fetch waits at most 0.5 s for data); ten seconds of
#: nothing is a fetch path that stopped, not a slow broker, and costs the partitions' traffic
#: ten seconds, not the worker.
STALL_AFTER_S = 10.0
#: How often the watch looks.
CHECK_EVERY_S = 1.0


class RebalanceSafeRecovery(Recovery):
    stall_after_s: float = STALL_AFTER_S
    check_every_s: float = CHECK_EVERY_S

    def __init__(self, app: Any, tables: Any, **kwargs: Any) -> None:
        super().__init__(app, tables, **kwargs)
        #: When each stalled partition was last re-read: the next re-read waits as long again.
        self.nudged_at: dict[TP, float] = {}

    @Service.task
    async def _watch_for_stalls(self) -> None:
        interval: Seconds = self.check_every_s
        told = False
        async for _ in self.itertimer(interval, name="Recovery.stall_watch"):
            try:
                await self.check_for_stall(monotonic())
            except (RebalanceAgain, IllegalStateError):
                pass  # the assignment changed under the re-read: the recovery starts over
            except Exception:  # a watch must not take the worker down with it
                if not told:
                    self.log.exception(
                        "the table recovery stall watch failed; recoveries go on without it "
                        "(a stalled one is not re-read): report this with the error below"
                    )
                    told = True

    def awaiting_actives(self) -> bool:
        """Reading the active changelogs: recovering, the flow resumed for it ("Resuming
        flow..."), and no newer rebalance pending (which starts the recovery over)."""
        return (
            self.in_recovery
            and bool(cast(Any, self.app.consumer).flow_active)
            and not self.signal_recovery_start.is_set()
        )

    async def check_for_stall(self, now: float) -> list[TP]:
        """Re-read the active partitions that stalled (see ``stalled_partitions``); returns
        them."""
        if not self.awaiting_actives():
            self.nudged_at.clear()
            return []
        remaining = self.active_remaining()
        stalled = stalled_partitions(
            now,
            remaining=remaining,
            started_at=self._recovery_started_at,
            last_event_at=self._active_events_received_at,
            last_nudge_at=self.nudged_at,
            quiet_for=self.stall_after_s,
        )
        if not stalled:
            return []
        self.log.warning(
            "table recovery stalled: no changelog record for %.0f s from %s, which still lack "
            "%s record(s); the worker stays not ready until they arrive. Re-reading them from "
            "their last applied record. If this repeats, restart this worker (its partitions "
            "move and recover from scratch) and report the state below.\n%s",
            self.stall_after_s,
            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in stalled),
            ", ".join(str(remaining[tp]) for tp in stalled),
            describe_fetch_path(self.app, stalled),
        )
        for tp in stalled:
            self.nudged_at[tp] = now
        consumer = self.app.consumer
        # A newer assignment raises RebalanceAgain (or aiokafka's IllegalStateError for a
        # partition no longer assigned): the recovery starts over anyway.
        await self._seek_offsets(consumer, set(stalled), self.active_offsets, "active")
        if self.awaiting_actives():
            # Not once the recovery has ended meanwhile: it pauses the active changelogs then,
            # and the tables' own writes must not be read back into them.
            consumer.resume_partitions(stalled)
        return stalled

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
