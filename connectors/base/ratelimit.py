"""A per-credential request budget, fed by the platform's own rate-limit headers.

Proactive throttling: rather than run into 429s, a sink asks the budget before each call and
the budget answers how long to wait. The budget refills continuously at ``limit`` per
``window`` (a token bucket) and is corrected by every response's headers (``remaining`` and
``reset``), so it converges on the platform's own view even when other clients share the
credential.

In a cluster, each worker owns a share of the budget proportional to the partitions of the
commands topic it holds (``set_share``): two workers with four partitions each get half each,
and a rebalance moves the share with the partitions. The sum stays at the platform's limit.

**Sinks first.** The reads of pull-based sources (polls, reconciliation) spend the same
account's calls as the sinks' writes. A sink registers its budget under its connector id
(``register_account_budget``, held only as long as the sink holds it), and a source of the
same connector calls through a ``YieldingBudget``: its own cap (a share of the limit, so a long
poll never takes everything), then a token from the sink's budget, taken only while that
budget holds more than ``reserve`` of its capacity. A sink under backlog keeps the shared
bucket low, so polls wait; they never wait longer than ``max_wait_s`` per call, so a busy day
delays the fallback without switching it off. The sum of both stays at the limit: a source's
calls come out of the worker's share.

The budget also keeps plain running totals (calls taken, seconds made to wait, 429s by scope)
for the worker's ``/metrics``, which reads them at scrape time (``app.budget_metrics``): a
call costs two additions, never a metrics registry lookup.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "RateBudget",
    "RateHeaders",
    "YieldingBudget",
    "register_account_budget",
    "registered_budget",
]


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """What a response said about the budget; any part may be missing."""

    limit: int | None = None
    remaining: int | None = None
    reset_after_s: float | None = None


class RateBudget:
    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        headroom: float = 0.97,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window_s
        self._headroom = headroom
        self._share = 1.0
        self._clock = clock
        self._tokens = self._capacity()
        self._updated = clock()
        self._lock = asyncio.Lock()
        #: calls that took a token (every call the client made through this budget)
        self.calls = 0
        #: seconds the budget told callers to wait before their call, added up
        self.waited_seconds = 0.0
        #: 429 answers by scope ("account", "record")
        self.rate_limited: dict[str, int] = {}

    @property
    def share(self) -> float:
        return self._share

    @property
    def per_second(self) -> float:
        """Calls per second this worker may make now: its share of the limit, less headroom."""
        return self._rate()

    def set_share(self, owned: int, total: int) -> None:
        """This worker holds ``owned`` of ``total`` partitions of the commands topic."""
        self._share = 0.0 if total <= 0 else max(0.0, min(1.0, owned / total))
        self._tokens = min(self._tokens, self._capacity())

    def _capacity(self) -> float:
        return self._limit * self._headroom * self._share

    def _rate(self) -> float:
        return self._capacity() / self._window

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity(), self._tokens + (now - self._updated) * self._rate())
        self._updated = now

    def free_fraction(self) -> float:
        """How full the bucket is now, 0 (spent or owed) to 1 (full)."""
        self._refill()
        capacity = self._capacity()
        return 0.0 if capacity <= 0 else max(0.0, self._tokens / capacity)

    def delay(self) -> float:
        """Seconds to wait before the next call (0 when a token is there); takes the token."""
        self._refill()
        self.calls += 1
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        rate = self._rate()
        if rate <= 0:
            self.waited_seconds += self._window
            return self._window
        wait = (1 - self._tokens) / rate
        self._tokens -= 1
        self.waited_seconds += wait
        return wait

    async def acquire(self) -> None:
        async with self._lock:
            wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)

    def observe(self, headers: RateHeaders) -> None:
        """Correct the budget from a response: never hold more than the platform has left."""
        if headers.limit is not None and headers.limit > 0:
            self._limit = headers.limit
        self._refill()
        if headers.remaining is not None:
            platform_left = headers.remaining * self._share
            self._tokens = min(self._tokens, platform_left)

    def refused(self, scope: str) -> None:
        """The platform answered 429 for ``scope``: counted (an account-wide one also
        empties the budget, through ``exhausted_for``)."""
        self.rate_limited[scope] = self.rate_limited.get(scope, 0) + 1

    def exhausted_for(self, seconds: float) -> None:
        """A 429: spend everything until ``seconds`` from now."""
        self._refill()
        self._tokens = -seconds * self._rate()


#: connector id → the budget of the sink writing to its account in this process
_ACCOUNTS: weakref.WeakValueDictionary[str, RateBudget] = weakref.WeakValueDictionary()


def register_account_budget(connector_id: str, budget: RateBudget) -> None:
    """A sink's budget, which the connector's sources yield to (module docstring); forgotten
    once the sink is gone."""
    _ACCOUNTS[connector_id] = budget


def registered_budget(connector_id: str) -> RateBudget | None:
    """The budget the connector's sink registered in this process, if it has one."""
    return _ACCOUNTS.get(connector_id)


class YieldingBudget(RateBudget):
    """A low-priority caller's budget (a poll, a reconciliation, a backfill): at most its own
    ``limit`` per ``window_s``, and each call also takes a token from ``shared()`` (the
    sink's budget, looked up at each call: the sink may start after the source) once that
    holds more than ``reserve`` of its capacity, or after ``max_wait_s`` of waiting for it
    (module docstring)."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        shared: Callable[[], RateBudget | None] = lambda: None,
        reserve: float = 0.5,
        max_wait_s: float = 60.0,
        step_s: float = 0.25,
        headroom: float = 0.97,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(limit, window_s, headroom=headroom, clock=clock)
        self._shared = shared
        self._reserve = reserve
        self._max_wait = max_wait_s
        self._step = step_s
        #: calls that waited for the sinks, and the seconds spent waiting (for metrics, benches)
        self.yielded = 0
        self.yielded_s = 0.0

    async def acquire(self) -> None:
        await super().acquire()
        shared = self._shared()
        if shared is None:
            return
        waited = 0.0
        while shared.free_fraction() < self._reserve and waited < self._max_wait:
            await asyncio.sleep(self._step)
            waited += self._step
        if waited:
            self.yielded += 1
            self.yielded_s += waited
        await shared.acquire()

    def observe(self, headers: RateHeaders) -> None:
        # The header's limit is the account's, not this caller's cap: only what is left counts.
        super().observe(RateHeaders(remaining=headers.remaining))
        shared = self._shared()
        if shared is not None:
            shared.observe(headers)

    def exhausted_for(self, seconds: float) -> None:
        super().exhausted_for(seconds)
        shared = self._shared()
        if shared is not None:
            shared.exhausted_for(seconds)
