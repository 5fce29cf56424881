"""The one retry policy: tenacity, exponential backoff with jitter, Retry-After honoured.

``RetriableAPIError`` (5xx, timeouts, resets) is retried with backoff; ``RateLimitedError``
waits at least the platform's ``Retry-After``; ``FatalAPIError`` is never retried. After the
last attempt the error propagates and the caller dead-letters the command with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from schemas.errors import RateLimitedError, RetriableAPIError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


class RetryPolicy:
    def __init__(
        self,
        *,
        attempts: int = 6,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        jitter_s: float = 0.5,
    ) -> None:
        self.attempts = attempts
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=jitter_s)

    def wait(self, state: RetryCallState) -> float:
        backoff: float = self._backoff(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitedError):
            return max(backoff, error.retry_after)
        return backoff


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RetriableAPIError),
        stop=stop_after_attempt(policy.attempts),
        wait=policy.wait,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises after the last attempt")
