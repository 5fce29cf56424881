"""A fixed-window rate limiter, the model the platforms here document.

Windows are aligned to the wall clock (``floor(now / window) * window``), so ``reset_at`` is
a real Unix time a platform can put straight into its reset header. The limiter only decides;
each platform renders the decision as its own headers and 429 body. As each platform uses it:

* Zendesk counts requests "in the current minute" and reports seconds to the window's end in
  ``ratelimit-reset`` ("Rate limits",
  https://developer.zendesk.com/api-reference/introduction/rate-limits): 60-second windows;
  Update Ticket's 30 per 10 minutes per user per ticket is a 600-second window (fixed rather
  than sliding: UNVERIFIED, the page does not say).
* Intercom "evenly distribute[s]" the minute's budget "into 10 second windows" and reports
  ``X-RateLimit-Reset`` as a Unix time; the page's example resets at 1487332510 then
  1487332520, on 10-second boundaries ("Rate Limiting",
  https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting).
* A refused request is not charged: UNVERIFIED for both (no page says), and with fixed
  windows it changes nothing a client sees (nothing remains either way, and the window ends
  when it ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sandboxes.base.clock import Clock

__all__ = ["FixedWindowLimiter", "RateDecision"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one hit.

    ``remaining`` is what is left in the window after this hit (never negative), ``reset_at``
    the Unix time (seconds) the window ends, ``retry_after`` whole seconds until then (at
    least 1 when refused, so a client never busy-loops on ``Retry-After: 0``).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    retry_after: int


class FixedWindowLimiter:
    """``limit`` hits per key in each ``window_seconds`` window."""

    def __init__(self, limit: int, window_seconds: float, clock: Clock) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_seconds > 0")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def _window_start(self) -> tuple[float, float]:
        now = self._clock.now().timestamp()
        return now, math.floor(now / self.window_seconds) * self.window_seconds

    def hit(self, key: str, cost: int = 1) -> RateDecision:
        """Count one request (``cost`` units) for ``key`` and say whether it may proceed.

        A refused hit is not counted, as platforms do not charge rejected calls.
        """
        now, start = self._window_start()
        window_start, used = self._windows.get(key, (start, 0))
        if window_start != start:
            used = 0
        reset_at = start + self.window_seconds
        retry_after = max(1, math.ceil(reset_at - now))
        if used + cost > self.limit:
            self._windows[key] = (start, used)
            return RateDecision(False, self.limit, max(0, self.limit - used), reset_at, retry_after)
        used += cost
        self._windows[key] = (start, used)
        return RateDecision(True, self.limit, self.limit - used, reset_at, retry_after)

    def peek(self, key: str) -> RateDecision:
        """The current budget for ``key`` without spending any."""
        now, start = self._window_start()
        window_start, used = self._windows.get(key, (start, 0))
        if window_start != start:
            used = 0
        reset_at = start + self.window_seconds
        retry_after = max(1, math.ceil(reset_at - now))
        return RateDecision(used < self.limit, self.limit, self.limit - used, reset_at, retry_after)

    def reset(self) -> None:
        """Forget every window (``POST /_sandbox/reset``)."""
        self._windows.clear()
