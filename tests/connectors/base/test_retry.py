"""``call_until_answered``: a platform's outage waited out in place, for as long as wanted."""

from __future__ import annotations

import pytest

from connectors.base.retry import RetryPolicy, call_until_answered
from schemas.errors import FatalAPIError, RetriableAPIError

#: two attempts a round, no backoff: the rounds are what is counted
_POLICY = RetryPolicy(attempts=2, initial_s=0.0, max_s=0.0, jitter_s=0.0)


class _Platform:
    """Answers ``answer`` after ``down`` failed calls (503s), and counts the calls."""

    def __init__(self, down: int, answer: str = "chat-1") -> None:
        self.down = down
        self.answer = answer
        self.calls = 0

    async def call(self) -> str:
        self.calls += 1
        if self.calls <= self.down:
            raise RetriableAPIError(f"answered 503 (call {self.calls}); will retry", status=503)
        return self.answer


async def test_an_outage_longer_than_one_rounds_attempts_is_waited_out() -> None:
    platform = _Platform(down=5)  # two rounds of two attempts, then one more failure
    told: list[int] = []
    answer = await call_until_answered(
        platform.call,
        _POLICY,
        wanted=lambda: True,
        on_unanswered=lambda error, rounds: told.append(rounds),
        pause_s=0.0,
    )
    assert answer == "chat-1"
    assert platform.calls == 6
    assert told == [1, 2]


async def test_an_answer_no_longer_wanted_is_not_waited_for() -> None:
    platform = _Platform(down=100)
    told: list[int] = []
    answer = await call_until_answered(
        platform.call,
        _POLICY,
        wanted=lambda: len(told) < 3,  # e.g. the input's partition taken away meanwhile
        on_unanswered=lambda error, rounds: told.append(rounds),
        pause_s=0.0,
    )
    assert answer is None
    assert told == [1, 2, 3]
    assert platform.calls == 6  # no call after the third round: nobody wants its answer


async def test_nothing_is_called_when_the_answer_is_not_wanted_at_all() -> None:
    platform = _Platform(down=0)
    answer = await call_until_answered(
        platform.call, _POLICY, wanted=lambda: False, on_unanswered=print, pause_s=0.0
    )
    assert (answer, platform.calls) == (None, 0)


async def test_a_fatal_answer_is_not_waited_out() -> None:
    calls = 0

    async def refused() -> str:
        nonlocal calls
        calls += 1
        raise FatalAPIError("answered 404 (not found)", status=404)

    with pytest.raises(FatalAPIError):
        await call_until_answered(
            refused, _POLICY, wanted=lambda: True, on_unanswered=print, pause_s=0.0
        )
    assert calls == 1
