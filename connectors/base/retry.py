"""The one retry policy: tenacity, exponential backoff with jitter, Retry-After honoured.

``RetriableAPIError`` (5xx, timeouts, resets) is retried with backoff; ``RateLimitedError``
waits at least the platform's ``Retry-After``; ``FatalAPIError`` is never retried. After the
last attempt the error propagates and the caller dead-letters the command with it.

A 429 is not a failed attempt: the platform refused the call before running it, and says when
to come back. Counting it as one let a busy hour's bursts (or one record's own limit, Zendesk's
30 updates per ticket per 10 minutes) dead-letter a command the platform would have taken a
little later (``make soak``: one lookup refused eight times in a row, then dead-lettered). So
429s spend a time budget instead (``rate_limited_s``, from the first 429 of the call), and only
the other failures spend the attempts.

A task waiting between two attempts has nothing on its way to the platform: the previous
attempt ended (its outcome, possibly "may have landed", is known to the sink) and the next has
not started. ``between_attempts(task)`` says so, so whoever must stop the task (a partition
taken away in a rebalance) can cut it at once instead of waiting out a backoff that can be a
minute long (a 429's Retry-After).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from schemas.errors import RateLimitedError, RetriableAPIError

__all__ = [
    "RetryPolicy",
    "between_attempts",
    "call_until_answered",
    "call_with_retries",
    "wait_between_attempts",
]

T = TypeVar("T")

#: tasks sleeping between two attempts of a call
_waiting: set[asyncio.Task[Any]] = set()


async def wait_between_attempts(seconds: float) -> None:
    """Sleep ``seconds`` between two attempts; meanwhile ``between_attempts`` is True for the
    calling task."""
    task = asyncio.current_task()
    if task is not None:
        _waiting.add(task)
    try:
        await asyncio.sleep(seconds)
    finally:
        if task is not None:
            _waiting.discard(task)


def between_attempts(task: asyncio.Task[Any] | None) -> bool:
    """Whether ``task`` is waiting between two attempts (nothing of it on its way)."""
    return task is not None and task in _waiting


class _Stop:
    """When one call gives up: after ``attempts`` failures that were not 429s, or once it has
    been rate limited for ``rate_limited_s`` seconds (counted from its first 429)."""

    def __init__(self, attempts: int, rate_limited_s: float) -> None:
        self._attempts = attempts
        self._rate_limited_s = rate_limited_s
        self._failures = 0
        self._limited_since: float | None = None

    def __call__(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is not None and isinstance(outcome.exception(), RateLimitedError):
            now = time.monotonic()
            if self._limited_since is None:
                self._limited_since = now
            return now - self._limited_since >= self._rate_limited_s
        self._failures += 1
        return self._failures >= self._attempts


class RetryPolicy:
    def __init__(
        self,
        *,
        attempts: int = 6,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        jitter_s: float = 0.5,
        rate_limited_s: float = 900.0,
    ) -> None:
        #: failures (not 429s) before the error propagates
        self.attempts = attempts
        #: how long one call may keep being rate limited before the 429 propagates
        self.rate_limited_s = rate_limited_s
        self._backoff = wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=jitter_s)

    def retrying(self) -> AsyncRetrying:
        """Tenacity set up with this policy, for one call."""
        return AsyncRetrying(
            retry=retry_if_exception_type(RetriableAPIError),
            stop=_Stop(self.attempts, self.rate_limited_s),
            wait=self.wait,
            sleep=wait_between_attempts,
            reraise=True,
        )

    def wait(self, state: RetryCallState) -> float:
        backoff: float = self._backoff(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitedError):
            return max(backoff, error.retry_after)
        return backoff


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    # The first attempt runs before tenacity is built: nearly every call succeeds at once,
    # and setting up the retrying machinery cost 12.6 µs of CPU a call for nothing, ≈ 4 % of
    # a sink's API call (bench.http_client, docs/performance.md). A retriable failure hands
    # its error to tenacity as attempt 1, so the waits (Retry-After included), the stop and
    # the error raised are the same as when tenacity ran every attempt.
    try:
        return await call()
    except RetriableAPIError as error:
        first: RetriableAPIError | None = error
    async for attempt in policy.retrying():
        with attempt:
            if first is not None:
                failed, first = first, None
                raise failed
            return await call()
    raise AssertionError("unreachable: tenacity re-raises after the last attempt")


async def call_until_answered(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    wanted: Callable[[], bool],
    on_unanswered: Callable[[RetriableAPIError, int], None],
    pause_s: float,
) -> T | None:
    """``call_with_retries`` again and again, ``pause_s`` apart, for as long as the platform
    does not answer and the answer is still ``wanted()``; None once it is not.

    For a caller that has nowhere to put the call's input aside (no dead-letter path) and
    must not fail for an outage: it waits the outage out in place. ``on_unanswered(error,
    rounds)`` hears of each round of attempts that ended unanswered, to say so. A
    ``FatalAPIError`` (an answer, if not a happy one) propagates at once.
    """
    rounds = 0
    while wanted():
        try:
            return await call_with_retries(call, policy)
        except RetriableAPIError as error:
            rounds += 1
            on_unanswered(error, rounds)
        if not wanted():
            break
        await wait_between_attempts(pause_s)
    return None
