"""Platform-side delivery limits in the shared dispatcher, against a real loopback receiver on a
manual clock: the breaker opens, drops and counts, probes and closes; a pause ends by itself; a
suspension holds until resumed; limits apply only when the fault profile says so."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandboxes.base import (
    DeliveryLimits,
    FaultProfile,
    LoopbackReceiver,
    ManualClock,
    RetryPolicy,
    WebhookDispatcher,
    load_profile,
    run_sandboxes,
)
from tests.sandboxes.base.conftest import NotesSandbox

BREAKER = DeliveryLimits(
    open_state="breaker_open", window_s=60, max_errors=3, open_s=10, probe_after_open=True
)
PAUSE = DeliveryLimits(
    open_state="paused", window_s=60, max_consecutive_errors=2, open_s=30, suspend_after_s=3600
)
LIMITS_ON = FaultProfile(webhook_limits=True)


@pytest.fixture
async def receiver() -> AsyncIterator[LoopbackReceiver]:
    async with LoopbackReceiver() as rx:
        yield rx


def dispatcher(
    url: str, clock: ManualClock, limits: DeliveryLimits, faults: FaultProfile = LIMITS_ON
) -> WebhookDispatcher:
    # One attempt per notification: retries would move the manual clock while they back off.
    policy = RetryPolicy(max_attempts=1, limits=limits)
    return WebhookDispatcher(
        url, faults=faults, rng=random.Random(1), clock=clock, retry_policy=policy
    )


async def send(d: WebhookDispatcher, *numbers: int) -> None:
    for i in numbers:
        await d.emit(json.dumps({"i": i}).encode(), {"Content-Type": "application/json"})
        await d.drain()


def received(rx: LoopbackReceiver) -> list[tuple[int, int]]:
    return [(json.loads(d.body)["i"], d.status) for d in rx.deliveries]


async def test_breaker_opens_drops_then_probes_and_closes(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, clock, BREAKER)
    receiver.fail_next(4, 503)
    try:
        await send(d, 1, 2, 3, 4)  # the fourth error is "more than 3"
        assert d.governor.state == "breaker_open"
        await send(d, 5, 6)
        clock.advance(9.9)
        await send(d, 7)
        assert d.counters.dropped == {"breaker_open": 3}
        clock.advance(0.1)  # open period over: the next delivery tests the endpoint
        await send(d, 8)
        assert d.governor.state == "sending"
        await send(d, 9)
    finally:
        await d.close()
    assert received(receiver) == [(1, 503), (2, 503), (3, 503), (4, 503), (8, 200), (9, 200)]
    assert (d.counters.emitted, d.counters.dropped_by_platform, d.governor.trips) == (9, 3, 1)


async def test_failed_probe_opens_the_breaker_again(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, clock, BREAKER)
    receiver.fail_next(5, 500)
    try:
        await send(d, 1, 2, 3, 4)
        clock.advance(10)
        await send(d, 5)  # the probe fails
        await send(d, 6)
        assert (d.governor.state, d.governor.trips) == ("breaker_open", 2)
        clock.advance(10)
        await send(d, 7)
    finally:
        await d.close()
    assert received(receiver)[-2:] == [(5, 500), (7, 200)]
    assert d.counters.dropped == {"breaker_open": 1}


async def test_error_share_trips_only_past_the_minimum_volume(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    share = DeliveryLimits(
        open_state="breaker_open", window_s=60, max_error_rate=0.7, min_requests=4, open_s=5
    )
    d = dispatcher(receiver.url, clock, share)
    receiver.fail_next(3, 503)
    try:
        await send(d, 1, 2, 3)  # 3 of 3 failed, but under the 4-request minimum
        assert d.governor.state == "sending"
        await send(d, 4)  # 3 of 4 = 75 %
        assert d.governor.state == "breaker_open"
    finally:
        await d.close()


async def test_errors_leave_the_window(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, clock, BREAKER)
    receiver.fail_next(6, 503)
    try:
        await send(d, 1, 2, 3)
        clock.advance(61)  # those three are older than the window now
        await send(d, 4, 5, 6)
        assert d.governor.state == "sending"
        assert d.counters.dropped_by_platform == 0
    finally:
        await d.close()


async def test_pause_ends_by_itself_and_a_success_ends_the_run_of_errors(
    receiver: LoopbackReceiver,
) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, clock, PAUSE)
    receiver.fail_next(4, 500)
    try:
        await send(d, 1, 2, 3)  # three consecutive errors: "more than 2"
        assert d.governor.state == "paused"
        await send(d, 4)
        clock.advance(30)
        await send(d, 5)  # sent as normal again (no probe), and fails
        assert d.governor.state == "sending"
        clock.advance(3600)
        await send(d, 6)  # answered: the run of errors ends before it lasts an hour
        assert d.governor.state == "sending"
    finally:
        await d.close()
    assert received(receiver) == [(1, 500), (2, 500), (3, 500), (5, 500), (6, 200)]
    assert d.counters.dropped == {"paused": 1}


async def test_suspension_holds_until_resumed(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, clock, PAUSE)
    receiver.fail_next(2, 500)
    try:
        await send(d, 1)
        clock.advance(3601)
        await send(d, 2)  # still failing after more than an hour of errors
        assert d.governor.state == "suspended"
        clock.advance(30 * 24 * 3600)
        await send(d, 3)
        d.governor.resume()
        await send(d, 4)
    finally:
        await d.close()
    assert received(receiver) == [(1, 500), (2, 500), (4, 200)]
    assert d.counters.dropped == {"suspended": 1}


async def test_limits_apply_only_when_the_profile_says_so(receiver: LoopbackReceiver) -> None:
    d = dispatcher(receiver.url, ManualClock(), BREAKER, faults=FaultProfile())
    receiver.fail_next(10, 503)
    try:
        await send(d, *range(12))
    finally:
        await d.close()
    assert d.limits is None
    assert [status for _, status in received(receiver)] == [503] * 10 + [200] * 2
    assert d.counters.dropped_by_platform == 0


def test_profiles_scale_the_documented_limits() -> None:
    documented = DeliveryLimits(
        open_state="paused",
        window_s=900,
        max_consecutive_errors=1000,
        open_s=900,
        suspend_after_s=7 * 86400,
    )
    throttle = load_profile("webhook_throttle")
    scaled = documented.scaled(
        counts=throttle.webhook_limits_count_scale, time=throttle.webhook_limits_time_scale
    )
    assert (scaled.max_consecutive_errors, scaled.window_s, scaled.open_s) == (10, 900, 900)
    fast = documented.scaled(counts=0.0001, time=0.01)
    assert fast.max_consecutive_errors == 1  # never scaled to zero
    assert (fast.window_s, fast.suspend_after_s) == (9, 6048)
    assert load_profile("webhook_limits").webhook_limits_count_scale == 1


class LimitedNotes(NotesSandbox):
    platform = "limited"
    webhook_retry_policy = RetryPolicy(max_attempts=1, limits=BREAKER)


async def test_state_shows_the_breaker_and_resume_closes_it(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    sandbox = LimitedNotes.create(webhook_target=receiver.url, clock=clock)
    receiver.fail_next(4, 503)
    async with (
        run_sandboxes([sandbox]) as running,
        httpx.AsyncClient(base_url=running.url("limited")) as http,
    ):
        hooks = sandbox.context.webhooks
        assert hooks is not None
        put = await http.put("/_sandbox/faults", json={"profile": "webhook_limits"})
        assert put.status_code == 200
        for n in range(6):
            await http.post("/notes", json={"text": f"note {n}"})
            await hooks.drain()
        state: dict[str, Any] = (await http.get("/_sandbox/state")).json()["webhooks"]
        assert (state["dropped_by_platform"], state["dropped_by_state"]) == (
            2,
            {"breaker_open": 2},
        )
        governor = state["governor"]
        assert (governor["enabled"], governor["state"], governor["trips"]) == (
            True,
            "breaker_open",
            1,
        )
        assert governor["since"] == clock.now().isoformat()
        assert governor["reopens_at"] == "2025-01-01T00:00:10+00:00"
        resumed = (await http.post("/_sandbox/webhooks/resume")).json()
        assert resumed["state"] == "sending"
        await http.post("/notes", json={"text": "after"})
        await hooks.drain()
        await http.post("/_sandbox/reset")
        after_reset = (await http.get("/_sandbox/state")).json()["webhooks"]
    assert [d.status for d in receiver.deliveries] == [503] * 4 + [200]
    assert after_reset["dropped_by_platform"] == 0
    assert after_reset["governor"]["trips"] == 0
