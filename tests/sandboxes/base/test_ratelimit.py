"""FixedWindowLimiter: windows aligned to the wall clock, per-key budgets."""

from __future__ import annotations

from datetime import UTC, datetime

from sandboxes.base import FixedWindowLimiter, ManualClock

START = datetime(2025, 1, 1, 0, 0, 3, tzinfo=UTC)  # 3 s into a 10 s window


def test_counts_down_refuses_and_resets_at_the_window_edge() -> None:
    clock = ManualClock(START)
    limiter = FixedWindowLimiter(3, 10, clock)
    decisions = [limiter.hit("app") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    window_end = START.timestamp() - 3 + 10
    assert {d.reset_at for d in decisions} == {window_end}
    assert decisions[-1].retry_after == 7
    clock.advance(6.5)
    assert not limiter.hit("app").allowed
    assert limiter.hit("app").retry_after == 1  # never 0 while refused
    clock.advance(0.5)
    fresh = limiter.hit("app")
    assert (fresh.allowed, fresh.remaining, fresh.reset_at) == (True, 2, window_end + 10)


def test_keys_have_separate_budgets_and_refusals_are_free() -> None:
    clock = ManualClock(START)
    limiter = FixedWindowLimiter(1, 10, clock)
    assert limiter.hit("a").allowed
    for _ in range(5):
        assert not limiter.hit("a").allowed
    assert limiter.hit("b").allowed
    assert limiter.peek("a").remaining == 0
    limiter.reset()
    assert limiter.peek("a").remaining == 1


def test_cost_spends_several_units() -> None:
    limiter = FixedWindowLimiter(10, 60, ManualClock(START))
    assert limiter.hit("k", cost=8).remaining == 2
    assert not limiter.hit("k", cost=3).allowed
    assert limiter.hit("k", cost=2).remaining == 0
