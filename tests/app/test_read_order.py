"""PartitionReads: the decisions behind Positions, with plain values (no Kafka, no clock)."""

from __future__ import annotations

from faust.types import TP

from app.agents.read_order import (
    GIVE_UP_AFTER_S,
    TAIL_LOOKS,
    WARN_AFTER_S,
    PartitionReads,
    Reading,
    Verdict,
)

TP3 = TP("raw", 3)


def _read(
    reads: PartitionReads, offset: int, *, committed: int | None = 0, now: float = 0.0
) -> Reading:
    """``committed`` None: the partition's committed offset is not looked up yet."""
    return reads.received(TP3, offset, committed=lambda _: committed, end=lambda _: 100, now=now)


def test_an_unbroken_run_from_the_committed_offset_is_processed() -> None:
    reads = PartitionReads()
    verdicts = [_read(reads, offset, committed=5).verdict for offset in (5, 6, 7)]
    assert verdicts == [Verdict.PROCESS] * 3
    assert reads.rewind(TP3) is None


def test_a_record_past_a_gap_starts_a_rewind_and_later_ones_are_held() -> None:
    reads = PartitionReads()
    assert _read(reads, 0).verdict is Verdict.PROCESS
    started = _read(reads, 3, now=10.0)
    assert started.verdict is Verdict.REWIND
    assert started.rewind is not None
    assert (started.rewind.to, started.rewind.seen) == (1, 3)
    assert reads.rewind(TP3) is started.rewind
    assert [_read(reads, o).verdict for o in (4, 2)] == [Verdict.HOLD, Verdict.HOLD]
    back = _read(reads, 1, now=12.5)
    assert back == Reading(Verdict.PROCESS, started.rewind)  # the completion is reported
    assert reads.rewind(TP3) is None
    assert [_read(reads, o).verdict for o in (2, 3)] == [Verdict.PROCESS, Verdict.PROCESS]


def test_a_record_before_the_committed_offset_is_looked_up_is_dropped_keeping_nothing() -> None:
    # aiokafka fetched from the committed offset (40) while perform_seek was looking it up:
    # taken for 0, it made 40 a record past a gap and the partition was read from its start.
    reads = PartitionReads()
    assert [_read(reads, o, committed=None).verdict for o in (40, 41)] == [Verdict.EARLY] * 2
    assert reads.rewind(TP3) is None
    assert reads.tracked() == set()
    assert reads.may_have_run(TP3, 99)  # nothing noted: not even the end at the first record
    # looked up: the lookup's seek to 40 brings them again, and reading runs from there
    assert [_read(reads, o, committed=40).verdict for o in (40, 41, 42)] == [Verdict.PROCESS] * 3
    assert reads.rewind(TP3) is None


def test_a_record_fetched_before_the_lookup_that_comes_after_it_is_read_from_the_commit() -> None:
    # The fetch loop still handing on what it fetched before the lookup's seek: the gap it
    # shows is read again from the committed offset, not from 0.
    reads = PartitionReads()
    assert _read(reads, 40, committed=None).verdict is Verdict.EARLY
    started = _read(reads, 41, committed=40)
    assert started.verdict is Verdict.REWIND
    assert started.rewind is not None
    assert started.rewind.to == 40
    assert _read(reads, 40, committed=40).verdict is Verdict.PROCESS


def test_with_nothing_committed_the_records_dropped_before_the_lookup_are_read_again() -> None:
    # aiokafka read from the log's start (auto_offset_reset); perform_seek does not seek a
    # partition with nothing committed, so those records come back through a rewind.
    reads = PartitionReads()
    assert [_read(reads, o, committed=None).verdict for o in (0, 1, 2)] == [Verdict.EARLY] * 3
    started = _read(reads, 3, committed=0)
    assert started.rewind is not None
    assert started.rewind.to == 0
    assert [_read(reads, o).verdict for o in (0, 1, 2, 3)] == [Verdict.PROCESS] * 4


def test_a_fetch_position_is_not_judged_before_the_lookup() -> None:
    reads = PartitionReads()
    for look in range(TAIL_LOOKS + 1):
        assert reads.fetched_past(TP3, 9, committed=None, now=float(look)) is None
    assert reads.tracked() == set()
    # once looked up (nothing committed), the looks start from the first
    for look in range(1, TAIL_LOOKS):
        assert reads.fetched_past(TP3, 9, committed=0, now=float(look)) is None
    started = reads.fetched_past(TP3, 9, committed=0, now=10.0)
    assert started is not None
    assert started.to == 0


def test_nothing_committed_means_reading_starts_at_zero() -> None:
    reads = PartitionReads()
    started = _read(reads, 11)
    assert started.verdict is Verdict.REWIND
    assert started.rewind is not None
    assert started.rewind.to == 0


def test_the_log_start_moving_past_the_target_still_completes_the_rewind() -> None:
    reads = PartitionReads()
    started = _read(reads, 12, committed=0)
    assert started.rewind is not None
    started.rewind.to = 10  # retention removed 0..9: the seek goes to the log start
    assert _read(reads, 10).verdict is Verdict.PROCESS


def test_forgetting_a_partition_ends_its_rewind_and_starts_afresh() -> None:
    reads = PartitionReads()
    _read(reads, 0)
    started = _read(reads, 5)
    assert reads.forget([TP("raw", 3)]) == [(TP3, started.rewind)]
    assert reads.rewind(TP3) is None
    assert reads.tracked() == set()
    # The next owner's count: from the committed offset it was assigned with.
    assert _read(reads, 5, committed=5).verdict is Verdict.PROCESS
    assert reads.forget([TP3]) == []


def test_what_may_have_run_is_below_the_end_at_the_first_record() -> None:
    reads = PartitionReads()
    assert reads.may_have_run(TP3, 7)  # nothing read yet: anything may have run
    reads.received(TP3, 0, committed=lambda _: 0, end=lambda _: 4, now=0.0)
    assert reads.may_have_run(TP3, 3)
    assert not reads.may_have_run(TP3, 4)


def test_an_overdue_rewind_is_reported_once_per_period_and_given_up_in_the_end() -> None:
    reads = PartitionReads()
    started = _read(reads, 9, now=100.0)
    rewind = started.rewind
    assert rewind is not None
    assert not rewind.overdue(100.0 + WARN_AFTER_S - 1)
    assert rewind.overdue(100.0 + WARN_AFTER_S)
    assert not rewind.overdue(100.0 + WARN_AFTER_S + 1)  # just reported
    assert rewind.overdue(100.0 + 2 * WARN_AFTER_S + 1)
    assert not rewind.expired(100.0 + GIVE_UP_AFTER_S - 1)
    assert rewind.expired(100.0 + GIVE_UP_AFTER_S)
    rewind.failed("TimeoutError()")
    rewind.failed("IllegalStateError('Partition is not assigned')")
    assert (rewind.failures, rewind.last_error) == (
        2,
        "IllegalStateError('Partition is not assigned')",
    )


def test_a_paused_rewind_is_not_given_up_and_its_age_still_counts_from_the_start() -> None:
    reads = PartitionReads()
    rewind = _read(reads, 9, now=100.0).rewind
    assert rewind is not None
    rewind.paused(100.0 + GIVE_UP_AFTER_S)  # paused the whole time so far
    assert not rewind.expired(100.0 + GIVE_UP_AFTER_S + 1)
    assert rewind.left(100.0 + GIVE_UP_AFTER_S + 1) == GIVE_UP_AFTER_S - 1  # as warned
    assert rewind.expired(100.0 + 2 * GIVE_UP_AFTER_S)  # resumed, and nothing came back
    assert rewind.age(100.0 + GIVE_UP_AFTER_S) == GIVE_UP_AFTER_S  # what the warnings tell
    assert rewind.overdue(100.0 + GIVE_UP_AFTER_S)  # the warnings go on


def test_a_fetch_position_past_what_was_seen_twice_without_progress_starts_a_rewind() -> None:
    reads = PartitionReads()
    for look in range(1, TAIL_LOOKS):
        assert reads.fetched_past(TP3, 9, committed=0, now=look) is None  # maybe on its way
    started = reads.fetched_past(TP3, 9, committed=0, now=6.0)
    assert started is not None
    assert (started.to, started.seen, started.started_at) == (0, 9, 6.0)
    assert reads.rewind(TP3) is started
    assert reads.fetched_past(TP3, 9, committed=0, now=11.0) is None  # one at a time
    assert _read(reads, 0).verdict is Verdict.PROCESS


def test_progress_between_looks_or_a_position_caught_up_is_no_gap() -> None:
    reads = PartitionReads()
    assert reads.fetched_past(TP3, 9, committed=5, now=0.0) is None
    assert _read(reads, 5, committed=5).verdict is Verdict.PROCESS
    assert reads.fetched_past(TP3, 9, committed=5, now=5.0) is None  # 6 is expected now
    assert reads.fetched_past(TP3, 6, committed=5, now=10.0) is None  # caught up
    assert reads.fetched_past(TP3, 9, committed=5, now=15.0) is None  # a fresh suspicion
    assert reads.rewind(TP3) is None
    reads.forget([TP3])
    assert reads.fetched_past(TP3, 9, committed=5, now=20.0) is None  # forgotten with it


def test_a_record_delivered_again_after_its_rewind_was_back_is_dropped() -> None:
    # The replay benchmark's repeated writes: the tail check took two slow records for
    # dropped, both arrived, then the seek back landed and brought them a second time; they
    # ran again as if new (below no "may have run" mark), and the sink wrote them twice.
    reads = PartitionReads()
    # the partition's end at the first record after the assignment was 10
    first = reads.received(TP3, 0, committed=lambda _: 0, end=lambda _: 10, now=0.0)
    assert first.verdict is Verdict.PROCESS
    assert [_read(reads, o).verdict for o in range(1, 55)] == [Verdict.PROCESS] * 54
    started = reads.fetched_past(TP3, 57, committed=0, now=0.0)
    for look in range(1, TAIL_LOOKS):
        started = reads.fetched_past(TP3, 57, committed=0, now=float(look))
    assert started is not None
    assert started.to == 55
    assert _read(reads, 55).verdict is Verdict.PROCESS  # slow, not lost: the rewind is back
    assert _read(reads, 56).verdict is Verdict.PROCESS
    assert [_read(reads, o).verdict for o in (55, 56)] == [Verdict.SEEN, Verdict.SEEN]
    assert _read(reads, 57).verdict is Verdict.PROCESS  # the run goes on from there
    assert not reads.may_have_run(TP3, 56)  # which is why a second run looked new


def test_a_record_seen_before_is_dropped_while_a_rewind_waits_and_leaves_it_waiting() -> None:
    reads = PartitionReads()
    assert [_read(reads, o).verdict for o in (0, 1, 2)] == [Verdict.PROCESS] * 3
    started = _read(reads, 5)
    assert started.rewind is not None
    assert started.rewind.to == 3
    assert _read(reads, 1).verdict is Verdict.SEEN  # not the missing record
    assert reads.rewind(TP3) is started.rewind
    assert _read(reads, 3).verdict is Verdict.PROCESS
    assert reads.rewind(TP3) is None


def test_after_a_rebalance_the_records_from_the_commit_are_read_again() -> None:
    reads = PartitionReads()
    assert [_read(reads, o).verdict for o in (0, 1, 2)] == [Verdict.PROCESS] * 3
    reads.forget([TP3])  # revoked, or assigned afresh: reading starts at the commit
    assert [_read(reads, o, committed=1).verdict for o in (1, 2)] == [Verdict.PROCESS] * 2
    assert reads.may_have_run(TP3, 2)
