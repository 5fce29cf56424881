"""A polite client's manners as an httpx transport: wait as told, retry, count everything.

The actors are plain API users on an ``httpx.AsyncClient``; the traffic engine gives every
client a :class:`PoliteTransport` so each platform's people behave the way a well-written
client does, without the actors repeating it four times:

* 429 (and Salesforce's throttle, a 403 ``REQUEST_LIMIT_EXCEEDED``): wait ``Retry-After``
  (seconds or an HTTP date); else Intercom's ``X-RateLimit-Reset`` (Unix time the window
  ends); else exponential backoff with jitter (Sunshine documents no ``Retry-After``);
* 5xx and transport errors: ``Retry-After`` when given, else backoff;
* anything else is the caller's to judge.

Waits are real seconds, never scaled by the engine's ``speed``: the server's rate windows
run on its clock. Platform clients retry in ``connectors.base.retry`` (tenacity); this is a
load generator's transport, and retrying *below* the actors keeps their code the code a
person's client would run. Retrying a write after a 5xx can repeat it on a real server; the
actors use ``Idempotency-Key`` where the platform offers one.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable

import httpx

from sandboxes.base.faults import PERSON_HEADER
from sandboxes.base.traffic.ledger import TrafficStats

__all__ = ["PoliteTransport", "retry_delay"]

Sleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _seconds_header(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def retry_delay(
    response: httpx.Response, attempt: int, *, backoff_s: float, max_wait_s: float, jitter: float
) -> float | None:
    """Seconds to wait before trying ``response``'s request again, or None: do not retry.

    ``jitter`` (0..1) spreads backoff so a burst of clients does not retry in lockstep.
    """
    status = response.status_code
    throttled = status == 429 or (status == 403 and b"REQUEST_LIMIT_EXCEEDED" in response.content)
    if not throttled and status not in _RETRY_STATUSES:
        return None
    backoff = min(max_wait_s, backoff_s * 2.0 ** (attempt - 1)) * (0.5 + jitter)
    told = _seconds_header(response.headers.get("retry-after"))
    if told is None and throttled:
        reset = _seconds_header(response.headers.get("x-ratelimit-reset"))
        told = None if reset is None else reset - time.time()
    if told is None:
        return backoff
    # A reset in the past (clock skew, a test clock) still waits a little, never forever.
    return min(max_wait_s, max(told, backoff_s / 2))


class PoliteTransport(httpx.AsyncBaseTransport):
    """Wraps ``inner``; counts requests for ``platform`` in ``stats``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        platform: str,
        stats: TrafficStats,
        attempts: int = 8,
        backoff_s: float = 0.25,
        max_wait_s: float = 60.0,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.inner = inner
        self.platform = platform
        self.stats = stats
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.rng = rng or random.Random(platform)  # noqa: S311 - jitter, not crypto
        self.sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counts = self.stats.platform(self.platform)
        request.headers[PERSON_HEADER] = "1"  # a person: see faults.PERSON_HEADER
        for attempt in range(1, self.attempts + 1):
            started = time.monotonic()
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError:
                counts.transport_errors += 1
                if attempt == self.attempts:
                    counts.gave_up += 1
                    raise
                counts.retries += 1
                await self.sleep(self._backoff(attempt))
                continue
            counts.requests += 1
            if response.status_code == 403:
                # Salesforce's throttle is named in the body; reading it here leaves the
                # content cached on the response for the caller.
                await response.aread()
            counts.latencies.append(time.monotonic() - started)
            delay = retry_delay(
                response,
                attempt,
                backoff_s=self.backoff_s,
                max_wait_s=self.max_wait_s,
                jitter=self.rng.random(),
            )
            if delay is None:
                return response
            if response.status_code >= 500:
                counts.server_errors += 1
            else:
                counts.rate_limited += 1
            if attempt == self.attempts:
                counts.gave_up += 1
                return response
            await response.aclose()
            counts.retries += 1
            await self.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait_s, self.backoff_s * 2.0 ** (attempt - 1)) * (
            0.5 + self.rng.random()
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
