"""The bounded memory of recent event ids per raw key (``streams.recent_ids``)."""

from __future__ import annotations

import struct

import pytest

from streams.recent_ids import (
    ENTRY_BYTES,
    MAX_IDS_LIMIT,
    contains,
    digest,
    remember,
    size_of,
)

DAY = 24 * 60 * 60
T0 = 1_780_000_000


def _ids(*names: str) -> list[bytes]:
    return [digest(n) for n in names]


def test_an_id_is_seen_within_the_window_and_forgotten_after_it() -> None:
    state = remember(None, _ids("evt-1"), now=T0, window=DAY, max_ids=10).state
    assert contains(state, digest("evt-1"), now=T0 + DAY, window=DAY)
    assert not contains(state, digest("evt-1"), now=T0 + DAY + 1, window=DAY)
    assert not contains(state, digest("evt-2"), now=T0, window=DAY)
    # a record older than the id's first sighting (a replay of old records) is inside too
    assert contains(state, digest("evt-1"), now=T0 - 60, window=DAY)


def test_remembering_drops_expired_ids_and_keeps_first_seen_times() -> None:
    state = remember(None, _ids("old", "kept"), now=T0, window=DAY, max_ids=10).state
    state = remember(state, _ids("kept"), now=T0 + 10, window=DAY, max_ids=10).state
    assert size_of(state) == 2
    # "kept" still dates from T0: a copy does not extend its life
    assert not contains(state, digest("kept"), now=T0 + DAY + 5, window=DAY)
    later = remember(state, _ids("new"), now=T0 + DAY + 5, window=DAY, max_ids=10)
    assert size_of(later.state) == 1
    assert contains(later.state, digest("new"), now=T0 + DAY + 5, window=DAY)
    assert later.evicted == 0  # expiry is not eviction


def test_the_count_bound_keeps_the_newest_and_reports_what_it_evicted() -> None:
    state = remember(None, _ids(*(f"e{n}" for n in range(5))), now=T0, window=DAY, max_ids=5)
    done = remember(state.state, _ids("e5", "e6"), now=T0 + 1, window=DAY, max_ids=5)
    assert done.evicted == 2
    assert size_of(done.state) == 5
    assert not contains(done.state, digest("e0"), now=T0 + 1, window=DAY)
    assert not contains(done.state, digest("e1"), now=T0 + 1, window=DAY)
    assert all(contains(done.state, digest(f"e{n}"), now=T0 + 1, window=DAY) for n in range(2, 7))


def test_a_full_state_stays_within_4_kb() -> None:
    many = _ids(*(f"evt-{n}" for n in range(10_000)))
    done = remember(None, many, now=T0, window=DAY, max_ids=MAX_IDS_LIMIT)
    assert len(done.state) <= 4096
    assert size_of(done.state) == MAX_IDS_LIMIT
    assert len(done.state) == 1 + MAX_IDS_LIMIT * ENTRY_BYTES


def _out_of_order() -> bytes:
    """ "late" remembered after "early" with an older time (a record's time went backwards)."""
    state = remember(None, _ids("early"), now=T0 + 100, window=DAY, max_ids=3).state
    return remember(state, _ids("late"), now=T0, window=DAY, max_ids=3).state


def _entries(state: bytes) -> list[tuple[bytes, int]]:
    return list(struct.iter_unpack(">8sI", state[1:]))


def test_an_id_added_with_an_older_time_takes_its_place_in_time_order() -> None:
    state = _out_of_order()
    assert _entries(state) == [(digest("late"), T0), (digest("early"), T0 + 100)]
    assert not contains(state, digest("late"), now=T0 + DAY + 1, window=DAY)
    assert contains(state, digest("early"), now=T0 + DAY + 1, window=DAY)
    # the count bound drops the id first seen longest ago, not the one remembered first
    done = remember(state, _ids("x", "y"), now=T0 + 200, window=DAY, max_ids=3)
    assert done.evicted == 1
    assert [time for _, time in _entries(done.state)] == [T0 + 100, T0 + 200, T0 + 200]
    assert not contains(done.state, digest("late"), now=T0 + 200, window=DAY)


def test_expired_ids_leave_from_the_front() -> None:
    later = remember(_out_of_order(), _ids("x"), now=T0 + DAY + 101, window=DAY, max_ids=3)
    assert _entries(later.state) == [(digest("x"), T0 + DAY + 101)]
    assert later.evicted == 0


def test_only_ids_still_in_the_window_count_as_evicted() -> None:
    # "late" has expired, "early" has not: room for "y" and "z" is made by dropping "late",
    # which is expiry, and then "early", the one eviction of an id still in the window
    done = remember(_out_of_order(), _ids("y", "z"), now=T0 + DAY + 1, window=DAY, max_ids=2)
    assert done.evicted == 1
    assert size_of(done.state) == 2
    assert not contains(done.state, digest("early"), now=T0 + DAY + 1, window=DAY)


def _appended_out_of_order() -> bytes:
    """What releases before time-ordered entries wrote for ``_out_of_order``: "late" after
    "early". The format is the same, so such states are still read."""
    entry = struct.Struct(">8sI")
    return b"\x01" + entry.pack(digest("early"), T0 + 100) + entry.pack(digest("late"), T0)


def test_an_expired_id_further_in_an_old_state_is_seen_afresh() -> None:
    old = _appended_out_of_order()
    assert not contains(old, digest("late"), now=T0 + DAY + 1, window=DAY)  # its own time
    done = remember(old, _ids("late"), now=T0 + DAY + 1, window=DAY, max_ids=3)
    assert contains(done.state, digest("late"), now=T0 + DAY + 1, window=DAY)
    assert _entries(done.state) == [(digest("early"), T0 + 100), (digest("late"), T0 + DAY + 1)]


def test_an_expired_id_further_in_an_old_state_takes_room_until_evicted() -> None:
    done = remember(_appended_out_of_order(), _ids("x"), now=T0 + DAY + 1, window=DAY, max_ids=2)
    # the bound took "early" (still in the window) ahead of "late" (expired, further in)
    assert done.evicted == 1
    assert _entries(done.state) == [(digest("late"), T0), (digest("x"), T0 + DAY + 1)]
    assert not contains(done.state, digest("late"), now=T0 + DAY + 1, window=DAY)


def test_bytes_straddling_two_entries_are_not_an_id() -> None:
    first, second = _ids("a", "b")
    state = remember(None, [first, second], now=T0, window=DAY, max_ids=10).state
    straddling = struct.pack(">I", T0) + second[:4]  # first's time, then half of second
    assert straddling in state
    assert not contains(state, straddling, now=T0, window=DAY)


@pytest.mark.parametrize(
    "state",
    [None, b"", b"\x02" + bytes(ENTRY_BYTES), b"\x01" + bytes(ENTRY_BYTES - 1)],
    ids=["none", "empty", "newer-version", "cut-short"],
)
def test_a_state_that_is_not_ours_remembers_nothing(state: bytes | None) -> None:
    assert size_of(state) == 0
    assert not contains(state, bytes(8), now=T0, window=DAY)
    assert size_of(remember(state, _ids("x"), now=T0, window=DAY, max_ids=3).state) == 1


def test_max_ids_outside_the_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_ids"):
        remember(None, _ids("x"), now=T0, window=DAY, max_ids=MAX_IDS_LIMIT + 1)
