"""Multi-event payloads: events heard close together share one POST (spec
``x-webhooks/Webhook Event``), and Sunshine's retry policy applies per payload."""

from __future__ import annotations

import asyncio
import json

from sandboxes.base.clock import ManualClock
from sandboxes.base.server import run_sandboxes
from sandboxes.zendesk_conversations import SunshineSandbox, SunshineSandboxConfig
from tests.sandboxes.zendesk_conversations.harness import (
    START,
    Harness,
    WebhookReceiver,
    serve_sandbox,
)


async def _two_users_two_conversations(harness: Harness) -> list[str]:
    conversations = []
    for external_id in ("crm-1", "crm-2"):
        conversation_id = await harness.create_conversation(await harness.create_user(external_id))
        await harness.post_text(conversation_id, f"hello {external_id}")
        conversations.append(conversation_id)
    return conversations


async def test_one_payload_carries_events_of_several_users_and_conversations(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    first, second = await _two_users_two_conversations(hooked)
    await hooked.drain()
    [delivery] = receiver.received
    events = delivery.events
    assert [e["type"] for e in events] == ["conversation:create", "conversation:message"] * 2
    assert [e["payload"]["conversation"]["id"] for e in events] == [first, first, second, second]
    assert len({e["id"] for e in events}) == 4
    assert len({e["payload"]["user"]["externalId"] for e in events[::2]}) == 2


async def test_a_full_batch_is_sent_at_once_and_the_rest_later(receiver: WebhookReceiver) -> None:
    config = SunshineSandboxConfig(webhook_batch_window_s=None, webhook_batch_max_events=3)
    async with serve_sandbox(webhook_target=receiver.url, config=config) as harness:
        await _two_users_two_conversations(harness)
        # Three events filled a batch, which went out without waiting for a drain.
        assert harness.sandbox.publisher.held == 1
        await harness.drain()
    assert [len(r.events) for r in receiver.received] == [3, 1]


async def test_retries_resend_the_same_batch_byte_for_byte(receiver: WebhookReceiver) -> None:
    receiver.script([500, 503])
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        await _two_users_two_conversations(harness)
        await harness.drain()
    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1
    assert len(receiver.received[0].events) == 4


async def test_a_non_recoverable_answer_loses_the_whole_batch(receiver: WebhookReceiver) -> None:
    receiver.script([400])
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        await _two_users_two_conversations(harness)
        await harness.drain()
        hooks = harness.sandbox.context.webhooks
        assert hooks is not None
        assert hooks.counters.failed == 1
    [delivery] = receiver.received
    assert len(delivery.events) == 4


async def test_the_batch_window_holds_events_then_sends_them_together(
    receiver: WebhookReceiver,
) -> None:
    config = SunshineSandboxConfig(webhook_batch_window_s=0.05)
    async with serve_sandbox(webhook_target=receiver.url, config=config) as harness:
        state = harness.sandbox.state
        user = state.create_user(
            external_id="crm-1", profile={}, metadata=None, signed_up_at=None, to_be_retained=None
        )
        _, created = state.create_conversation(user=user, fields={})
        _, other = state.create_conversation(user=user, fields={})
        await harness.sandbox.publisher.publish(created)
        await harness.sandbox.publisher.publish(other)
        assert harness.sandbox.publisher.held == 2  # within the window: nothing sent yet
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
        assert harness.sandbox.publisher.held == 0
    [delivery] = receiver.received
    assert [e["id"] for e in delivery.events] == [created[0].id, other[0].id]


async def test_a_zero_window_sends_each_call_s_events_alone(receiver: WebhookReceiver) -> None:
    config = SunshineSandboxConfig(webhook_batch_window_s=0)
    async with serve_sandbox(webhook_target=receiver.url, config=config) as harness:
        await _two_users_two_conversations(harness)
        await harness.drain()
    assert [len(r.events) for r in receiver.received] == [1, 1, 1, 1]


def test_the_default_batching_is_small_and_on() -> None:
    config = SunshineSandboxConfig()
    assert config.webhook_batch_window_s is not None
    assert 0 < config.webhook_batch_window_s <= 1
    assert config.webhook_batch_max_events > 1


async def test_shutdown_sends_what_is_held(receiver: WebhookReceiver) -> None:
    config = SunshineSandboxConfig(webhook_batch_window_s=None)
    async with serve_sandbox(webhook_target=receiver.url, config=config) as harness:
        await harness.create_conversation(await harness.create_user("crm-1"))
        await harness.sandbox.stop()
        hooks = harness.sandbox.context.webhooks
        assert hooks is not None
        await hooks.drain()
    [delivery] = receiver.received
    assert json.loads(delivery.body)["events"][0]["type"] == "conversation:create"


async def test_draining_running_sandboxes_sends_the_held_batch_first(
    receiver: WebhookReceiver,
) -> None:
    # Every caller that drains the running sandboxes (rehearsals, benches) must see the events
    # Sunshine holds back to batch, not only those already handed to the dispatcher.
    base = SunshineSandbox.create(seed=7, webhook_target=receiver.url, clock=ManualClock(START))
    config = SunshineSandboxConfig(webhook_batch_window_s=None)
    sandbox = SunshineSandbox(context=base.context, config=config)
    async with run_sandboxes([sandbox]) as running:
        user = sandbox.state.create_user(
            external_id="crm-1", profile={}, metadata=None, signed_up_at=None, to_be_retained=None
        )
        _, created = sandbox.state.create_conversation(user=user, fields={})
        await sandbox.publisher.publish(created)
        assert sandbox.publisher.held == 1
        await running.drain_webhooks()
        assert sandbox.publisher.held == 0
    assert [len(r.events) for r in receiver.received] == [1]
