"""The org's daily API allowance, read from ``Sforce-Limit-Info`` after every response: when
fewer than ``reserve`` calls are left, calls pause until there is room again; they never fail
for it.

Sources:

* "Limit Info Header" (REST API Developer Guide),
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm :
  ``Sforce-Limit-Info: api-usage=<used>/<limit>`` on each REST response (other entries may
  follow after ``;``, e.g. ``api-usage=10018/100000; api-bursts=1/750``, or come before it,
  e.g. ``per-app-api-usage=17/250(appName=...)`` in older versions).
* "API Request Limits and Allocations" (Salesforce Developer Limits and Allocations Quick
  Reference):
  https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html
  the allowance is per org over a rolling 24 hours, and a call beyond it is refused with
  ``REQUEST_LIMIT_EXCEEDED`` (HTTP 403, "Status Codes and Error Responses").

A rolling window gives no reset time: a pause ends when the resume check (a ``/limits`` read
by the client, every ``probe_every_s``) finds room, and at the latest 24 hours after it began,
when every call counted at that moment has left the window. Other users of the org spend the
same allowance, so the reserve is what Deskstream leaves them; the probes (one per interval)
come out of it.

Calls started since the last header are counted against the allowance too, so concurrent
callers do not all slip past the reserve; the header of each answer then resets the count
(it may lag the calls still in flight: the reserve absorbs that).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

__all__ = ["DAILY_WINDOW_S", "DailyLimit", "parse_limit_info"]

logger = logging.getLogger(__name__)

DAILY_WINDOW_S = 24 * 3600.0
_API_USAGE = re.compile(r"(?<![\w-])api-usage=(\d+)/(\d+)")

ResumeCheck = Callable[[], Awaitable[bool]]


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """``(used, limit)`` from a ``Sforce-Limit-Info`` value, or None when it has none."""
    if not header:
        return None
    match = _API_USAGE.search(header)
    if match is None:
        return None
    used, limit = int(match.group(1)), int(match.group(2))
    return (used, limit) if limit > 0 else None


class DailyLimit:
    """The org's remaining daily calls, and the pause when they run low."""

    def __init__(
        self,
        *,
        reserve: int,
        probe_every_s: float = 900.0,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if reserve < 0 or probe_every_s <= 0:
            raise ValueError("reserve must be >= 0 and probe_every_s > 0")
        self.reserve = reserve
        self._probe_every = probe_every_s
        self._now = now
        self._sleep = sleep
        self._used: int | None = None
        self._limit: int | None = None
        self._started = 0  # calls let through since the last header
        self._resume_check: ResumeCheck | None = None
        self._lock = asyncio.Lock()
        self.pauses = 0

    @property
    def remaining(self) -> int | None:
        """Calls left as far as this process knows; None before the first header."""
        if self._used is None or self._limit is None:
            return None
        return self._limit - self._used - self._started

    def has_room(self) -> bool:
        remaining = self.remaining
        return remaining is None or remaining > self.reserve

    def use_resume_check(self, check: ResumeCheck) -> None:
        """``check`` is awaited every ``probe_every_s`` while paused; True ends the pause.
        It should refresh this object (a call whose header is observed) and not acquire."""
        self._resume_check = check

    def observe(self, used: int, limit: int) -> None:
        self._used, self._limit, self._started = used, limit, 0

    def exhausted(self) -> None:
        """The platform refused a call for the daily allowance: nothing is left."""
        if self._limit is not None:
            self._used, self._started = self._limit, 0

    async def acquire(self) -> None:
        """Return when a call may go; pauses (never raises) while the allowance is low."""
        if self.has_room():
            self._started += 1
            return
        async with self._lock:  # one caller probes; the others wait behind it
            while not self.has_room():
                await self._pause()
            self._started += 1

    async def _pause(self) -> None:
        self.pauses += 1
        began = self._now()
        deadline = began + DAILY_WINDOW_S
        logger.warning(
            "salesforce daily API allowance low: pausing calls remaining=%s limit=%s "
            "reserve=%s probe_every_s=%s",
            self.remaining,
            self._limit,
            self.reserve,
            self._probe_every,
        )
        while True:
            wait = min(self._probe_every, deadline - self._now())
            if wait > 0:
                await self._sleep(wait)
            if self._now() >= deadline:
                # Every call counted when the pause began has left the rolling window: let
                # the next call go, and its header say where the org stands.
                self._used = None
                break
            if self._resume_check is not None and await self._resume_check():
                break
        logger.info(
            "salesforce daily API allowance: resuming calls paused_s=%.0f remaining=%s",
            self._now() - began,
            self.remaining,
        )
