"""A per-credential request budget, fed by the platform's own rate-limit headers.

Proactive throttling: rather than run into 429s, a sink asks the budget before each call and
the budget answers how long to wait. The budget refills continuously at ``limit`` per
``window`` (a token bucket) and is corrected by every response's headers (``remaining`` and
``reset``), so it converges on the platform's own view even when other clients share the
credential.

In a cluster, each worker owns a share of the budget proportional to the partitions of the
commands topic it holds (``set_share``): two workers with four partitions each get half each,
and a rebalance moves the share with the partitions. The sum stays at the platform's limit.

The budget also keeps plain running totals (calls taken, seconds made to wait, 429s by scope)
for the worker's ``/metrics``, which reads them at scrape time (``app.budget_metrics``): a
call costs two additions, never a metrics registry lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateBudget", "RateHeaders"]


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
