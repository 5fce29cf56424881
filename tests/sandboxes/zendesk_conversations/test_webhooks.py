"""Webhooks delivered to a real loopback receiver: envelope, X-API-Key, the escalation flow,
the switchboard's standby rule and Sunshine's retry policy."""

from __future__ import annotations

from typing import Any

import pytest

from sandboxes.zendesk_conversations import SUNSHINE_RETRY_POLICY
from tests.sandboxes.zendesk_conversations.harness import (
    Harness,
    WebhookReceiver,
    serve_sandbox,
)


async def _escalate(harness: Harness) -> str:
    """The AI answers, hands over to the agent workspace, a human replies and releases."""
    user_id = await harness.create_user("crm-1", profile={"givenName": "Ada"})
    conversation_id = await harness.create_conversation(user_id, metadata={"lang": "en"})
    enduser = f"/_sandbox/enduser/conversations/{conversation_id}/messages"
    agent = f"/_sandbox/agent/conversations/{conversation_id}"
    assert (
        await harness.admin.post(enduser, json={"text": "My invoice is wrong"})
    ).status_code == 201
    answer = await harness.post_text(
        conversation_id, "Let me get you a human.", displayName="AI", subtypes=["AI"]
    )
    passed = await harness.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={
            "switchboardIntegration": "zd-agentWorkspace",
            "metadata": {"first_message_id": answer["id"], "dataCapture.systemField.tags": "ai"},
        },
    )
    assert passed.status_code == 200
    assert (await harness.admin.post(enduser, json={"text": "Thanks"})).status_code == 201
    reply = await harness.admin.post(
        f"{agent}/reply", json={"text": "Fixed it.", "agentId": "777", "agentName": "Grace"}
    )
    assert reply.status_code == 201
    released = await harness.admin.post(f"{agent}/release", json={"metadata": {"solved": True}})
    assert released.status_code == 200
    await harness.drain()
    return conversation_id


async def test_escalation_delivers_every_event_in_order_with_the_api_key(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await _escalate(hooked)
    cfg = hooked.config
    assert receiver.types() == [
        "conversation:create",
        "conversation:message",
        "conversation:message",
        "switchboard:passControl",
        "conversation:message",
        "conversation:message",
        "switchboard:releaseControl",
    ]
    for delivery in receiver.received:
        assert delivery.headers["X-API-Key"] == cfg.webhook_secret
        assert delivery.headers["Content-Type"].startswith("application/json")
        body = delivery.json
        assert body["app"] == {"id": cfg.app_id}
        assert body["webhook"] == {"id": cfg.webhook_id, "version": "v2"}
        for event in delivery.events:
            assert set(event) == {"id", "type", "createdAt", "payload"}
            assert event["payload"]["conversation"]["id"] == conversation_id
    event_ids = [e["id"] for e in receiver.events()]
    assert len(set(event_ids)) == len(event_ids)

    created, user_msg, ai_msg, passed, user_msg2, agent_msg, released = (
        e["payload"] for e in receiver.events()
    )
    assert created["creationReason"] == "none"
    assert created["user"]["externalId"] == "crm-1"
    assert created["conversation"]["activeSwitchboardIntegration"]["name"] == "ai-agent"

    message = user_msg["message"]
    assert message["author"]["type"] == "user"
    assert message["author"]["displayName"] == "Ada"
    assert message["author"]["user"]["externalId"] == "crm-1"
    assert message["author"]["userId"] == message["author"]["user"]["id"]
    assert message["content"] == {"type": "text", "text": "My invoice is wrong"}
    assert message["source"] == {"type": "web", "integrationId": cfg.web_integration_id}
    assert user_msg["conversation"]["activeSwitchboardIntegration"]["name"] == "ai-agent"

    assert ai_msg["message"]["author"] == {
        "type": "business",
        "displayName": "AI",
        "subtypes": ["AI"],
    }
    assert ai_msg["message"]["source"] == {"type": "api:conversations"}

    assert passed["conversation"]["activeSwitchboardIntegration"]["name"] == "zd-agentWorkspace"
    assert passed["metadata"]["first_message_id"] == ai_msg["message"]["id"]
    assert passed["conversation"]["metadata"] == {"lang": "en"}

    # The AI agent is on standby but has deliverStandbyEvents: it hears both sides.
    assert user_msg2["conversation"]["activeSwitchboardIntegration"]["name"] == "zd-agentWorkspace"
    agent_message = agent_msg["message"]
    assert agent_message["author"] == {
        "type": "business",
        "subtypes": ["agent"],
        "displayName": "Grace",
    }
    assert agent_message["metadata"] == {"__zendesk_msg.agent.id": "777"}
    assert agent_message["source"] == {
        "type": "zd:agentWorkspace",
        "integrationId": cfg.agent_workspace_integration_id,
    }

    assert released == {
        "conversation": {"id": conversation_id, "type": "personal", "metadata": {"lang": "en"}},
        "metadata": {"solved": True},
        "reason": "ticketClosed",
    }
    # The seven events were held together and went out in one payload, sent once.
    counters = hooked.sandbox.context.webhooks
    assert counters is not None
    assert len(receiver.received) == 1
    assert counters.counters.sent == 1
    assert counters.counters.attempts == 1


async def test_redundant_switchboard_actions_announce_nothing(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await hooked.create_conversation(await hooked.create_user("crm-1"))
    path = f"/conversations/{conversation_id}"
    for _ in range(2):
        response = await hooked.api.post(
            f"{path}/passControl", json={"switchboardIntegration": "zd-agentWorkspace"}
        )
        assert response.status_code == 200
    for _ in range(2):
        assert (await hooked.api.post(f"{path}/releaseControl")).status_code == 200
    await hooked.drain()
    assert receiver.types() == [
        "conversation:create",
        "switchboard:passControl",
        "switchboard:releaseControl",
    ]


async def test_offer_and_accept_control_are_announced(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await hooked.create_conversation(await hooked.create_user("crm-1"))
    path = f"/conversations/{conversation_id}"
    await hooked.api.post(
        f"{path}/offerControl", json={"switchboardIntegration": "next", "metadata": {"k": 1}}
    )
    await hooked.api.post(f"{path}/acceptControl", json={"metadata": {"k": 2}})
    await hooked.drain()
    offered, accepted = receiver.events()[1:]
    assert offered["type"] == "switchboard:offerControl"
    assert offered["payload"]["conversation"]["activeSwitchboardIntegration"]["name"] == "ai-agent"
    assert offered["payload"]["conversation"]["pendingSwitchboardIntegration"]["name"] == (
        "zd-agentWorkspace"
    )
    assert offered["payload"]["metadata"] == {"k": 1}
    assert accepted["type"] == "switchboard:acceptControl"
    assert accepted["payload"]["conversation"]["activeSwitchboardIntegration"]["name"] == (
        "zd-agentWorkspace"
    )
    assert "pendingSwitchboardIntegration" not in accepted["payload"]["conversation"]
    assert accepted["payload"]["metadata"] == {"k": 2}


async def test_standby_integration_without_standby_events_hears_no_messages(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    cfg = hooked.config
    await hooked.api.patch(
        f"/switchboards/{cfg.switchboard_id}/switchboardIntegrations/"
        f"{cfg.ai_switchboard_integration_id}",
        json={"deliverStandbyEvents": False},
    )
    conversation_id = await hooked.create_conversation(await hooked.create_user("crm-1"))
    agent = f"/_sandbox/agent/conversations/{conversation_id}"
    await hooked.api.post(
        f"/conversations/{conversation_id}/passControl", json={"switchboardIntegration": "next"}
    )
    await hooked.admin.post(f"{agent}/reply", json={"text": "withheld"})
    # Being offered control (pending) is enough to hear the conversation again.
    await hooked.api.post(
        f"/conversations/{conversation_id}/offerControl",
        json={"switchboardIntegration": "ai-agent"},
    )
    await hooked.admin.post(f"{agent}/reply", json={"text": "delivered"})
    await hooked.drain()
    assert receiver.types() == [
        "conversation:create",
        "switchboard:passControl",
        "switchboard:offerControl",
        "conversation:message",
    ]
    assert receiver.events()[-1]["payload"]["message"]["content"]["text"] == "delivered"
    counters = (await hooked.admin.get("/_sandbox/state")).json()["platform_counters"]
    assert counters["webhooks_withheld"] == {"conversation:message": 1}


async def test_failed_deliveries_are_retried_with_the_same_event(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    receiver.script([500, 503, 429])
    started = hooked.clock.monotonic()
    await hooked.create_user("crm-1")
    await hooked.create_conversation((await hooked.api.get("/users/crm-1")).json()["user"]["id"])
    await hooked.drain()
    assert len(receiver.received) == 4
    assert len({r.body for r in receiver.received}) == 1
    # Exponential backoff on the sandbox clock: 60 + 120 + 240 seconds.
    assert hooked.clock.monotonic() - started == pytest.approx(420)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 406])
async def test_non_recoverable_statuses_are_not_retried(
    receiver: WebhookReceiver, status: int
) -> None:
    receiver.script([status])
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        await harness.create_conversation(await harness.create_user("crm-1"))
        await harness.drain()
        hooks = harness.sandbox.context.webhooks
        assert hooks is not None
        assert hooks.counters.failed == 1
    assert len(receiver.received) == 1


async def test_a_delivery_is_attempted_at_most_five_times(receiver: WebhookReceiver) -> None:
    receiver.script([500] * 10)
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        await harness.create_conversation(await harness.create_user("crm-1"))
        await harness.drain()
        started_to_last = harness.clock.monotonic()
    assert len(receiver.received) == 5
    # Every retry happens inside Sunshine's 15 minute window.
    assert started_to_last <= 15 * 60


def test_retry_policy_matches_the_documented_one() -> None:
    policy = SUNSHINE_RETRY_POLICY
    assert policy.max_attempts == 5
    assert policy.timeout_s == 20
    assert sum(policy.backoff(a) for a in range(1, policy.max_attempts)) <= 15 * 60
    for status in (400, 401, 403, 404, 406):
        assert not policy.should_retry(status)
    for retried in (408, 409, 429, 500, 502, 503, None):
        assert policy.should_retry(retried)


async def test_snapshot_and_reset(hooked: Harness, receiver: WebhookReceiver) -> None:
    await _escalate(hooked)
    snapshot: dict[str, Any] = (await hooked.admin.get("/_sandbox/snapshot")).json()
    webhook = snapshot["integration"]["webhooks"][0]
    assert webhook["target"] == receiver.url
    assert webhook["secret"] == hooked.config.webhook_secret
    assert len(snapshot["conversations"]) == 1
    assert len(snapshot["conversations"][0]["messages"]) == 4
    assert snapshot["conversations"][0]["active"] is None
    assert sum(len(body["events"]) for body in snapshot["recentWebhooks"]) == 7
    assert (await hooked.admin.post("/_sandbox/reset")).status_code == 200
    assert (await hooked.api.get("/users/crm-1")).status_code == 404
    after = (await hooked.admin.get("/_sandbox/snapshot")).json()
    assert after["conversations"] == []
    assert after["recentWebhooks"] == []
