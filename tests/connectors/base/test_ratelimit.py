"""Budgets shared by a connector's sink and its sources: sinks first, sources yield."""

from __future__ import annotations

import gc

from connectors.base.ratelimit import (
    RateBudget,
    RateHeaders,
    YieldingBudget,
    register_account_budget,
    registered_budget,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_sinks_budget_is_found_by_its_connector_while_the_sink_holds_it() -> None:
    sink_budget = RateBudget(700, 60.0)
    register_account_budget("zd-test", sink_budget)
    assert registered_budget("zd-test") is sink_budget
    assert registered_budget("other") is None
    del sink_budget
    gc.collect()
    assert registered_budget("zd-test") is None  # the sink is gone: nothing to yield to


async def test_a_source_takes_its_calls_from_the_shared_budget() -> None:
    shared = RateBudget(100, 60.0, headroom=1.0)
    poll = YieldingBudget(10, 60.0, shared=lambda: shared, reserve=0.5, max_wait_s=1.0, step_s=0.01)
    for _ in range(5):
        await poll.acquire()
    assert round(shared.free_fraction() * 100) == 95  # five of the account's hundred calls
    assert poll.yielded == 0


async def test_a_source_waits_while_the_sinks_keep_the_budget_low() -> None:
    clock = Clock()
    shared = RateBudget(100, 60.0, headroom=1.0, clock=clock)
    for _ in range(80):  # the sinks spent 80 of 100: under the 50 % reserve
        assert shared.delay() == 0
    poll = YieldingBudget(
        10, 60.0, shared=lambda: shared, reserve=0.5, max_wait_s=0.05, step_s=0.01
    )
    await poll.acquire()
    assert poll.yielded == 1  # waited its longest, then took the call anyway
    assert poll.yielded_s >= 0.05


async def test_a_source_never_spends_more_than_its_own_cap() -> None:
    clock = Clock()
    shared = RateBudget(1000, 60.0, headroom=1.0, clock=clock)
    poll = YieldingBudget(3, 60.0, shared=lambda: shared, headroom=1.0, clock=clock)
    waits = [poll.delay() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] > 0  # the fourth call in the window waits for the cap to refill


def test_the_accounts_limit_in_a_header_does_not_raise_a_sources_cap() -> None:
    shared = RateBudget(100, 60.0, headroom=1.0)
    poll = YieldingBudget(10, 60.0, shared=lambda: shared, headroom=1.0)
    poll.observe(RateHeaders(limit=100, remaining=90))
    assert [poll.delay() for _ in range(10)] == [0.0] * 10
    assert poll.delay() > 0  # still 10 a minute, not 100
    assert shared.free_fraction() < 0.91  # the account's view took the header
