"""WebhookDispatcher against a real loopback receiver: retries, faults, ordering, counts."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import pytest

from sandboxes.base import (
    FaultProfile,
    LoopbackReceiver,
    ManualClock,
    RetryPolicy,
    WebhookDispatcher,
)


@pytest.fixture
async def receiver() -> AsyncIterator[LoopbackReceiver]:
    async with LoopbackReceiver() as rx:
        yield rx


def dispatcher(
    url: str,
    *,
    faults: FaultProfile | None = None,
    policy: RetryPolicy | None = None,
    seed: int = 3,
    clock: ManualClock | None = None,
) -> WebhookDispatcher:
    return WebhookDispatcher(
        url,
        faults=faults or FaultProfile(),
        rng=random.Random(seed),
        clock=clock or ManualClock(),
        retry_policy=policy or RetryPolicy(backoff_initial_s=1),
    )


async def emit_numbers(d: WebhookDispatcher, n: int) -> None:
    for i in range(n):
        await d.emit(json.dumps({"i": i}).encode(), {"Content-Type": "application/json"})


def numbers(rx: LoopbackReceiver) -> list[int]:
    return [json.loads(d.body)["i"] for d in rx.deliveries]


async def test_delivers_everything_in_order(receiver: LoopbackReceiver) -> None:
    d = dispatcher(receiver.url)
    try:
        await emit_numbers(d, 50)
        await d.drain()
    finally:
        await d.close()
    assert numbers(receiver) == list(range(50))
    assert (d.counters.emitted, d.counters.sent, d.counters.failed) == (50, 50, 0)
    assert d.pending == 0


@pytest.mark.parametrize(
    ("policy", "failures", "status", "attempts", "sent", "failed"),
    [
        (RetryPolicy(max_attempts=3), 1, 503, 2, 1, 0),
        (RetryPolicy(max_attempts=3), 3, 503, 3, 0, 1),
        (RetryPolicy(max_attempts=3), 1, 400, 1, 0, 1),
        (RetryPolicy(retry_statuses=None, never_retry_statuses=frozenset({404})), 1, 400, 2, 1, 0),
        (RetryPolicy(retry_statuses=None, never_retry_statuses=frozenset({404})), 1, 404, 1, 0, 1),
    ],
    ids=["retry-503", "exhaust-attempts", "no-retry-400", "retry-all-400", "never-retry-404"],
)
async def test_retry_policy(
    receiver: LoopbackReceiver,
    policy: RetryPolicy,
    failures: int,
    status: int,
    attempts: int,
    sent: int,
    failed: int,
) -> None:
    clock = ManualClock()
    receiver.fail_next(failures, status)
    d = dispatcher(receiver.url, policy=policy, clock=clock)
    try:
        await emit_numbers(d, 1)
        await d.drain()
    finally:
        await d.close()
    assert receiver.count == attempts
    assert (d.counters.attempts, d.counters.sent, d.counters.failed) == (attempts, sent, failed)
    # Backoff doubles from 1 s on the manual clock: 1 s, then 2 s.
    assert clock.monotonic() == sum(policy.backoff(a) for a in range(1, attempts))


async def test_unreachable_target_counts_transport_errors() -> None:
    async with LoopbackReceiver() as gone:
        url = gone.url
    d = dispatcher(url, policy=RetryPolicy(max_attempts=2, timeout_s=2))
    try:
        await emit_numbers(d, 1)
        await d.drain()
    finally:
        await d.close()
    assert (d.counters.transport_errors, d.counters.failed, d.counters.sent) == (2, 1, 0)


async def test_duplicates_are_byte_identical(receiver: LoopbackReceiver) -> None:
    d = dispatcher(receiver.url, faults=FaultProfile(webhook_duplicate_rate=1.0))
    try:
        await emit_numbers(d, 10)
        await d.drain()
    finally:
        await d.close()
    assert receiver.count == 20
    assert d.counters.duplicated == 10
    assert numbers(receiver) == [i for i in range(10) for _ in (0, 1)]


async def test_redelivery_is_a_new_attempt_rendered_by_the_platform(
    receiver: LoopbackReceiver,
) -> None:
    d = dispatcher(
        receiver.url,
        faults=FaultProfile(webhook_redelivery_rate=1.0),
        policy=RetryPolicy(max_attempts=2),
    )

    def render(attempt: int) -> tuple[bytes, dict[str, str]]:
        return json.dumps({"i": 0, "attempt": attempt}).encode(), {"X-Attempt": str(attempt)}

    try:
        await d.emit(b'{"i": 0, "attempt": 1}', {"X-Attempt": "1"}, render_attempt=render)
        await d.drain()
    finally:
        await d.close()
    assert [json.loads(x.body)["attempt"] for x in receiver.deliveries] == [1, 2]
    assert [x.headers["X-Attempt"] for x in receiver.deliveries] == ["1", "2"]
    assert d.counters.redelivered == 1


async def test_seeded_fault_rates_give_repeatable_counts(receiver: LoopbackReceiver) -> None:
    faults = FaultProfile(webhook_duplicate_rate=0.3, webhook_redelivery_rate=0.2)
    counts = []
    for seed in (5, 5, 6):
        d = dispatcher(receiver.url, faults=faults, seed=seed)
        try:
            await emit_numbers(d, 100)
            await d.drain()
        finally:
            await d.close()
        counts.append((d.counters.duplicated, d.counters.redelivered, d.counters.sent))
    assert counts[0] == counts[1]
    assert counts[0] != counts[2]
    duplicated, redelivered, sent = counts[0]
    assert 15 <= duplicated <= 45
    assert 8 <= redelivered <= 35
    assert sent == 100 + duplicated + redelivered


@pytest.mark.parametrize(("window", "reordered"), [(0, False), (1, False), (8, True)])
async def test_reorder_window(receiver: LoopbackReceiver, window: int, reordered: bool) -> None:
    d = dispatcher(receiver.url, faults=FaultProfile(webhook_reorder_window=window))
    try:
        await emit_numbers(d, 64)  # all queued before the sender runs
        await d.drain()
    finally:
        await d.close()
    got = numbers(receiver)
    assert sorted(got) == list(range(64))
    assert (got != list(range(64))) is reordered
    assert (d.counters.reordered > 0) is reordered
    if reordered:
        # Shuffling happens within groups of `window`, never across them.
        assert all(sorted(got[i : i + 8]) == list(range(i, i + 8)) for i in range(0, 64, 8))


async def test_delay_waits_on_the_clock(receiver: LoopbackReceiver) -> None:
    clock = ManualClock()
    d = dispatcher(receiver.url, faults=FaultProfile(webhook_delay_ms=500), clock=clock)
    try:
        await emit_numbers(d, 4)
        await d.drain()
    finally:
        await d.close()
    assert clock.monotonic() == pytest.approx(2.0)
    assert d.counters.delayed == 4


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_initial_s=1, backoff_factor=10, backoff_max_s=30)
    assert [policy.backoff(a) for a in (1, 2, 3)] == [1, 10, 30]


async def test_webhooks_switched_off_drop_what_falls_due_until_switched_on(
    receiver: LoopbackReceiver,
) -> None:
    d = dispatcher(receiver.url)
    try:
        await emit_numbers(d, 3)
        await d.drain()
        d.faults = FaultProfile(webhooks_off=True)  # what PUT /_sandbox/faults does
        for i in range(3, 7):
            await d.emit(json.dumps({"i": i}).encode(), {"Content-Type": "application/json"})
        await d.drain()
        d.faults = FaultProfile()
        await d.emit(json.dumps({"i": 7}).encode(), {"Content-Type": "application/json"})
        await d.drain()
    finally:
        await d.close()
    assert numbers(receiver) == [0, 1, 2, 7]
    assert d.counters.dropped == {"deactivated": 4}
    assert (d.counters.emitted, d.counters.sent) == (8, 4)
