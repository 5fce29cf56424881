"""The bookkeeping behind ``app.agents.positions``: for each partition an agent reads, the
next offset it expects, and the rewind in progress when records were skipped on the way to
the agent. Pure: no Kafka, no clock of its own (``now`` is passed in), so every decision is
tested with plain values (tests/app/test_read_order.py).

A gap shows when a record arrives past it (``received``), or, when the records dropped were a
partition's last ones, when the fetch position stays past what the agent has seen for
``TAIL_LOOKS`` looks (``fetched_past``). Both count from the committed offset, and judge only
once it is known: after a rebalance aiokafka can fetch from the committed offset before
Faust's ``perform_seek`` has looked it up, and a record taken then for one past a gap from 0
sought the partition back to the start of its log (``Verdict.EARLY``). A rewind lasts until
the first missing record arrives. While it lasts, records past the gap are held back (they
come again once the seek has landed); it is overdue after ``WARN_AFTER_S`` (a warning every
``WARN_AFTER_S`` from then on names the partition) and given up after ``GIVE_UP_AFTER_S``
(the worker then stops, so that its partitions are read again from their committed offsets
by whoever owns them next).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from faust.types import TP

__all__ = [
    "GIVE_UP_AFTER_S",
    "TAIL_LOOKS",
    "WARN_AFTER_S",
    "PartitionReads",
    "Reading",
    "Rewind",
    "Verdict",
]

#: a rewind whose first record has not come back after this long is reported, and again
#: every as long
WARN_AFTER_S = 30.0
#: looks at a fetch position past what the agent has seen, with no progress, before the
#: records between are taken for skipped
TAIL_LOOKS = 3
#: a rewind still not back after this long is given up: the worker stops (a silent stall
#: would hold the partition back for good)
GIVE_UP_AFTER_S = 300.0


@dataclass
class Rewind:
    """Reading a partition again from ``to``, the first record that never reached the agent."""

    to: int
    #: the offset that revealed the gap
    seen: int
    started_at: float
    #: seeks that landed, and those that failed (with the last error)
    seeks: int = 0
    failures: int = 0
    last_error: str | None = None
    _warned_at: float | None = field(default=None, repr=False)
    #: where the give-up's clock starts: ``started_at``, or the last look while paused
    _unpaused_since: float | None = field(default=None, repr=False)

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error

    def age(self, now: float) -> float:
        return now - self.started_at

    def overdue(self, now: float) -> bool:
        """True once ``WARN_AFTER_S`` has passed, then once every ``WARN_AFTER_S``: when to
        warn that the partition is still held back."""
        since = self.started_at if self._warned_at is None else self._warned_at
        if now - since < WARN_AFTER_S:
            return False
        self._warned_at = now
        return True

    def expired(self, now: float) -> bool:
        return self.left(now) <= 0

    def left(self, now: float) -> float:
        """Seconds until it is given up, unless its partition is paused meanwhile."""
        since = self.started_at if self._unpaused_since is None else self._unpaused_since
        return GIVE_UP_AFTER_S - (now - since)

    def paused(self, now: float) -> None:
        """Its partition is paused (a lane of the agent behind: ``app.agents.lanes``): nothing
        is fetched, so nothing can come back; the give-up's clock starts again from ``now``.
        Its age, which the overdue warnings tell, still counts from the start."""
        self._unpaused_since = now


@dataclass
class _Partition:
    #: end offset at the first record after assignment: records below it may have run before
    replay_below: int
    #: the next offset to be read
    next_offset: int


class Verdict(enum.Enum):
    #: the next record in an unbroken run: process it
    PROCESS = "process"
    #: past a gap being read again: drop it, it comes again once the seek has landed
    HOLD = "hold"
    #: past a gap just found: drop it and start reading again from ``Reading.rewind.to``
    REWIND = "rewind"
    #: handed to the agent already since the assignment: drop this second delivery
    SEEN = "seen"
    #: its partition's committed offset is not looked up yet in this assignment: drop it,
    #: keeping nothing (the lookup's seek to the committed offset, or with nothing committed
    #: to the log's start, brings it again)
    EARLY = "early"


@dataclass(frozen=True)
class Reading:
    verdict: Verdict
    #: REWIND: the rewind just started; PROCESS: the rewind this record completed, if any
    rewind: Rewind | None = None


# The readings without a rewind, made once: nearly every record gets one (a frozen dataclass
# made per record was 2.3 % of a normalizing worker's CPU).
_PROCESS, _HOLD, _SEEN = Reading(Verdict.PROCESS), Reading(Verdict.HOLD), Reading(Verdict.SEEN)
_EARLY = Reading(Verdict.EARLY)


class PartitionReads:
    """Where each partition stands, and the rewinds in progress."""

    def __init__(self) -> None:
        self._partitions: dict[TP, _Partition] = {}
        self._rewinds: dict[TP, Rewind] = {}
        #: partition → (the offset expected when its fetch position was first seen past it,
        #: looks since)
        self._suspects: dict[TP, tuple[int, int]] = {}

    def received(
        self,
        tp: TP,
        offset: int,
        *,
        committed: Callable[[TP], int | None],
        end: Callable[[TP], int | None],
        now: float,
    ) -> Reading:
        """Note the record at ``offset`` as read. ``committed`` gives a partition's committed
        offset (asked only for the first record after assignment, where reading starts: the
        log's start with nothing committed), or None while it is not looked up yet; ``end`` its end
        offset then.

        Before the lookup a record cannot be placed: taken for the start it would let a gap
        through, and a committed offset taken for 0 turned the first record into one past a
        gap from 0, and the partition was read again from the start of its log. So it is
        dropped and nothing is noted (``EARLY``).

        A record below the next one expected was handed to the agent already (reading runs
        unbroken from the committed offset): it comes a second time when a seek back lands
        after the records it went back for had arrived after all (slow, not lost: a busy
        worker's fetch loop holds fetched records while another agent's queue is full, and
        the tail check took them for dropped). Processed again it would run a second time
        as if new, below no "may have run" mark (the sinks executed such commands twice)."""
        part = self._partitions.get(tp)
        if part is None:
            start = committed(tp)
            if start is None:
                return _EARLY
            expected = start
        elif offset < part.next_offset:
            return _SEEN
        else:
            expected = part.next_offset
        rewind = self._rewinds.get(tp)
        if rewind is not None:
            if offset > rewind.to:
                return _HOLD
            del self._rewinds[tp]  # back at the first missing record (or before it)
        if rewind is None and offset > expected:
            started = self._rewinds[tp] = Rewind(to=expected, seen=offset, started_at=now)
            return Reading(Verdict.REWIND, started)
        if part is None:
            high = end(tp)
            part = self._partitions[tp] = _Partition(
                replay_below=high if high is not None else offset + 1, next_offset=offset
            )
        part.next_offset = max(part.next_offset, offset + 1)
        return _PROCESS if rewind is None else Reading(Verdict.PROCESS, rewind)

    def fetched_past(
        self, tp: TP, position: int, *, committed: int | None, now: float
    ) -> Rewind | None:
        """The partition's fetch position is ``position``: a rewind when it has been past the
        next record the agent expects for ``TAIL_LOOKS`` looks, and the agent got nothing since
        (one look is not enough: the record may be on its way to a busy agent).
        Those records were dropped on the way, and they were the partition's last ones (a
        later record would have revealed the gap): nothing else would ever bring them.
        ``committed`` is as for ``received``: before the lookup nothing is judged."""
        if tp in self._rewinds:
            return None
        part = self._partitions.get(tp)
        expected = committed if part is None else part.next_offset
        if expected is None or position <= expected:
            self._suspects.pop(tp, None)
            return None
        since, looks = self._suspects.get(tp, (expected, 0))
        looks = looks + 1 if since == expected else 1
        if looks < TAIL_LOOKS:
            self._suspects[tp] = (expected, looks)
            return None
        del self._suspects[tp]
        started = self._rewinds[tp] = Rewind(to=expected, seen=position, started_at=now)
        return started

    def rewind(self, tp: TP) -> Rewind | None:
        return self._rewinds.get(tp)

    def may_have_run(self, tp: TP, offset: int) -> bool:
        part = self._partitions.get(tp)
        return part is None or offset < part.replay_below

    def forget(self, tps: Iterable[TP]) -> list[tuple[TP, Rewind]]:
        """Forget ``tps`` (revoked, or assigned afresh: reading starts again at the committed
        offset, at or before any gap); the rewinds that were in progress on them."""
        dropped = []
        for tp in tps:
            key = TP(tp.topic, tp.partition)
            self._partitions.pop(key, None)
            self._suspects.pop(key, None)
            rewind = self._rewinds.pop(key, None)
            if rewind is not None:
                dropped.append((key, rewind))
        return dropped

    def tracked(self) -> set[TP]:
        return set(self._partitions) | set(self._rewinds) | set(self._suspects)
