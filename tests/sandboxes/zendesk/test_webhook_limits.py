"""Zendesk's documented webhook delivery against a real receiver on a manual clock: at most 3
retries, retries re-sent with the original signature, and the circuit breaker that drops
notifications while open (sources: ``sandboxes/zendesk/events.py``)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from sandboxes.zendesk import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook
from sandboxes.zendesk.events import ZENDESK_DELIVERY_LIMITS, ZENDESK_RETRY_POLICY
from tests.sandboxes.zendesk.conftest import SECRET, ZendeskEnv


async def settle(env: ZendeskEnv) -> None:
    async with asyncio.timeout(10):
        await env.drain()


async def new_user(env: ZendeskEnv, name: str) -> str:
    response = await env.http.post("/api/v2/users", json={"user": {"name": name}})
    assert response.status_code == 201, response.text
    await settle(env)
    return str(response.json()["user"]["id"])


async def webhook_state(env: ZendeskEnv) -> dict[str, Any]:
    state: dict[str, Any] = (await env.http.get("/_sandbox/state")).json()["webhooks"]
    return state


def signed(delivery: Any) -> tuple[str, str]:
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    return headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]


async def test_a_retry_carries_the_original_signature_timestamp(
    zendesk_hooks: ZendeskEnv,
) -> None:
    receiver = zendesk_hooks.receiver
    assert receiver is not None
    receiver.fail_next(1, 503)
    await new_user(zendesk_hooks, "Jo")
    first, retry = receiver.deliveries[0], receiver.deliveries[1]
    assert (first.status, retry.status) == (503, 200)
    # The retry went out after the backoff, a whole second later on the sandbox clock, so a
    # retry signed at its own send time would carry another timestamp.
    assert zendesk_hooks.clock.monotonic() >= ZENDESK_RETRY_POLICY.backoff(1) >= 1
    assert retry.body == first.body
    assert signed(retry) == signed(first)
    stamp, signature = signed(retry)
    assert stamp == "2025-01-01T00:00:00Z"
    assert signature == sign_webhook(SECRET, stamp, retry.body)


async def test_an_invocation_is_retried_at_most_three_times(zendesk_hooks: ZendeskEnv) -> None:
    receiver = zendesk_hooks.receiver
    assert receiver is not None
    receiver.fail_next(100, 503)
    await new_user(zendesk_hooks, "Kim")
    attempts = Counter(d.body for d in receiver.deliveries)
    assert attempts
    assert set(attempts.values()) == {4}
    state = await webhook_state(zendesk_hooks)
    assert state["failed"] == state["emitted"] == len(attempts)
    # Backoff 1 + 2 + 4 s between the four attempts of one invocation, on the sandbox clock.
    assert zendesk_hooks.clock.monotonic() >= 7


async def test_breaker_opens_drops_and_closes_after_a_good_test_request(
    zendesk_hooks: ZendeskEnv,
) -> None:
    receiver = zendesk_hooks.receiver
    assert receiver is not None
    put = await zendesk_hooks.http.put("/_sandbox/faults", json={"profile": "webhook_throttle"})
    assert put.status_code == 200
    # 400 is not retried, so every failure is one request and no backoff moves the clock.
    # Scaled by 0.01 the breaker opens at more than 10 errors, or at 70 % of >= 10 requests.
    receiver.fail_next(10, 400)
    users = 0
    while (await webhook_state(zendesk_hooks))["governor"]["state"] == "sending":
        users += 1
        assert users <= 10, "the breaker never opened"
        await new_user(zendesk_hooks, f"User {users}")
    assert [d.status for d in receiver.deliveries] == [400] * 10

    await new_user(zendesk_hooks, "Dropped")
    state = await webhook_state(zendesk_hooks)
    assert state["governor"]["state"] == "breaker_open"
    assert len(receiver.deliveries) == 10
    assert state["dropped_by_state"] == {"breaker_open": state["emitted"] - 10}
    assert state["dropped_by_platform"] > 0
    assert state["governor"]["limits"]["max_errors"] == 10

    zendesk_hooks.clock.advance(ZENDESK_DELIVERY_LIMITS.open_s)
    after = await new_user(zendesk_hooks, "After")
    state = await webhook_state(zendesk_hooks)
    assert state["governor"]["state"] == "sending"
    # The first of its events was the test request; it succeeded, so the rest went out too.
    delivered = receiver.deliveries[10:]
    assert delivered
    assert all(d.status == 200 for d in delivered)
    assert {json.loads(d.body)["detail"]["id"] for d in delivered} == {after}
