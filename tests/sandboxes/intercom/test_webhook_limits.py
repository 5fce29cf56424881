"""Intercom's documented pause and suspension of webhook notifications, against a real receiver
on a manual clock (sources: ``sandboxes/intercom/webhooks.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

from sandboxes.intercom.webhooks import INTERCOM_DELIVERY_LIMITS
from tests.sandboxes.intercom.conftest import IntercomEnv


async def new_contact(env: IntercomEnv, n: int) -> None:
    response = await env.http.post("/contacts", json={"email": f"c{n}@example.com"})
    assert response.status_code == 200, response.text
    async with asyncio.timeout(10):
        await env.drain()


async def webhook_state(env: IntercomEnv) -> dict[str, Any]:
    state: dict[str, Any] = (await env.http.get("/_sandbox/state")).json()["webhooks"]
    return state


async def test_consecutive_errors_pause_notifications_for_fifteen_minutes(
    intercom: IntercomEnv,
) -> None:
    put = await intercom.http.put("/_sandbox/faults", json={"profile": "webhook_throttle"})
    assert put.status_code == 200
    # Scaled by 0.01: more than 10 consecutive errors within 15 minutes pause; each failed
    # notification is retried once a minute later, so the errors fit in the window.
    intercom.receiver.fail_next(11, 500)
    n = 0
    while (await webhook_state(intercom))["governor"]["state"] == "sending":
        n += 1
        assert n <= 11, "never paused"
        await new_contact(intercom, n)
    assert [d.status for d in intercom.receiver.deliveries] == [500] * 11

    before = await webhook_state(intercom)
    await new_contact(intercom, 100)
    state = await webhook_state(intercom)
    assert len(intercom.receiver.deliveries) == 11
    assert state["dropped_by_state"]["paused"] == before["dropped_by_platform"] + 1
    assert state["governor"]["state"] == "paused"

    intercom.clock.advance(INTERCOM_DELIVERY_LIMITS.open_s)
    await new_contact(intercom, 101)
    state = await webhook_state(intercom)
    assert state["governor"]["state"] == "sending"
    assert [d.status for d in intercom.receiver.deliveries[11:]] == [200]


async def test_seven_days_of_errors_suspend_until_set_live(intercom: IntercomEnv) -> None:
    # Documented sizes: the pause (1000 errors) is out of reach here, the suspension is not.
    put = await intercom.http.put("/_sandbox/faults", json={"profile": "webhook_limits"})
    assert put.status_code == 200
    intercom.receiver.fail_next(3, 500)
    await new_contact(intercom, 1)  # fails, and its retry a minute later fails
    intercom.clock.advance(7 * 24 * 3600)
    await new_contact(intercom, 2)  # more than seven days of errors: suspended
    state = await webhook_state(intercom)
    assert state["governor"]["state"] == "suspended"
    assert state["governor"]["failing_since"] == "2025-01-01T00:00:00+00:00"
    # Its retry fell due while suspended: dropped, as is everything after, for good.
    intercom.clock.advance(30 * 24 * 3600)
    await new_contact(intercom, 3)
    state = await webhook_state(intercom)
    assert state["dropped_by_state"] == {"suspended": 2}
    assert [d.status for d in intercom.receiver.deliveries] == [500, 500, 500]

    resumed = await intercom.http.post("/_sandbox/webhooks/resume")  # "Set live"
    assert resumed.json()["state"] == "sending"
    await new_contact(intercom, 4)
    assert [d.status for d in intercom.receiver.deliveries] == [500, 500, 500, 200]
