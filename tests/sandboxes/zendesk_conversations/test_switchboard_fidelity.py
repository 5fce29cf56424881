"""Switchboard behaviour the product relies on, as the spec and API reference state it:
``switchboard:*:failure`` webhooks (``components/schemas/switchboard*Failure``), passControl
idempotency for an identified integration, and the integration-scope 403s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sandboxes.zendesk_conversations import SunshineSandboxConfig
from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver, serve_sandbox

_FAILURE_SCHEMAS = {
    "switchboard:passControl:failure": "switchboardPassControlFailure",
    "switchboard:offerControl:failure": "switchboardOfferControlFailure",
    "switchboard:acceptControl:failure": "switchboardAcceptControlFailure",
}


@pytest.fixture
async def as_ai(hooked: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The API as the AI agent's custom integration itself (Custom Integration API Key)."""
    cfg = hooked.config
    async with httpx.AsyncClient(
        base_url=hooked.api_root,
        auth=(cfg.integration_key_id, cfg.integration_key_secret),
        timeout=10,
    ) as client:
        yield client


async def _conversation(harness: Harness) -> str:
    return await harness.create_conversation(await harness.create_user("crm-1"))


def _active(conversation: dict[str, Any]) -> str | None:
    active = conversation.get("activeSwitchboardIntegration")
    return None if active is None else str(active["name"])


def _failures(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [e for e in receiver.events() if e["type"].endswith(":failure")]


def _payload_properties(spec: dict[str, Any], schema: str) -> set[str]:
    parts = spec["components"]["schemas"][schema]["allOf"]
    return set(parts[1]["properties"]["payload"]["properties"])


@pytest.mark.parametrize(
    ("action", "body", "status", "kind", "code", "message"),
    [
        pytest.param(
            "passControl",
            {"switchboardIntegration": "nobody", "metadata": {"k": "v"}},
            404,
            "switchboard:passControl:failure",
            "switchboard_invalid_target",
            "Switchboard invalid target",
            id="pass-to-unknown-integration",
        ),
        pytest.param(
            "offerControl",
            {"switchboardIntegration": "ai-agent", "metadata": {"k": "v"}},
            400,
            "switchboard:offerControl:failure",
            "switchboard_invalid_target",
            "Cannot offer control to the active switchboard integration.",
            id="offer-to-active",
        ),
        pytest.param(
            "acceptControl",
            {"metadata": {"k": "v"}},
            400,
            "switchboard:acceptControl:failure",
            "switchboard_invalid_action",
            "There is no pendingSwitchboardIntegration",
            id="accept-without-offer",
        ),
    ],
)
async def test_a_failed_action_announces_its_failure_webhook(
    hooked: Harness,
    receiver: WebhookReceiver,
    spec_dict: dict[str, Any],
    action: str,
    body: dict[str, Any],
    status: int,
    kind: str,
    code: str,
    message: str,
) -> None:
    conversation_id = await _conversation(hooked)
    response = await hooked.api.post(f"/conversations/{conversation_id}/{action}", json=body)
    assert response.status_code == status
    await hooked.drain()
    [failure] = _failures(receiver)
    assert failure["type"] == kind
    payload = failure["payload"]
    assert set(payload) <= _payload_properties(spec_dict, _FAILURE_SCHEMAS[kind])
    assert payload["error"] == {"code": code, "message": message}
    assert payload["metadata"] == {"k": "v"}
    # The conversation as it stays: the AI agent still in control.
    assert payload["conversation"]["id"] == conversation_id
    assert _active(payload["conversation"]) == "ai-agent"


async def test_with_failure_answers_off_the_webhook_is_the_only_signal(
    receiver: WebhookReceiver,
) -> None:
    config = SunshineSandboxConfig(
        webhook_batch_window_s=None, switchboard_failure_http_error=False
    )
    async with serve_sandbox(webhook_target=receiver.url, config=config) as harness:
        conversation_id = await _conversation(harness)
        response = await harness.api.post(
            f"/conversations/{conversation_id}/passControl",
            json={"switchboardIntegration": "nobody"},
        )
        assert response.status_code == 200
        assert response.json() == {}
        await harness.drain()
    assert [f["type"] for f in _failures(receiver)] == ["switchboard:passControl:failure"]


async def test_requests_refused_before_the_action_announce_nothing(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}"
    assert (await hooked.api.post(f"{path}/passControl", json={})).status_code == 400
    bad_metadata = {"switchboardIntegration": "next", "metadata": {"a": {"b": 1}}}
    assert (await hooked.api.post(f"{path}/passControl", json=bad_metadata)).status_code == 400
    await hooked.drain()
    assert _failures(receiver) == []


async def test_a_failed_agent_workspace_pass_is_announced(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await _conversation(hooked)
    await hooked.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={"switchboardIntegration": "zd-agentWorkspace"},
    )
    response = await hooked.admin.post(
        f"/_sandbox/agent/conversations/{conversation_id}/pass",
        json={"switchboardIntegration": "nobody"},
    )
    assert response.status_code == 404
    await hooked.drain()
    [failure] = _failures(receiver)
    assert failure["type"] == "switchboard:passControl:failure"
    assert _active(failure["payload"]["conversation"]) == "zd-agentWorkspace"


async def test_a_repeated_next_pass_by_the_identified_integration_is_disregarded(
    hooked: Harness, receiver: WebhookReceiver, as_ai: httpx.AsyncClient
) -> None:
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}/passControl"
    for attempt in (1, 2):
        body = {"switchboardIntegration": "next", "metadata": {"attempt": attempt}}
        assert (await as_ai.post(path, json=body)).status_code == 200
    await hooked.drain()
    # Resolved from the caller's place, the retry found its target active: no bounce back.
    assert _active(await hooked.conversation(conversation_id)) == "zd-agentWorkspace"
    passes = [e for e in receiver.events() if e["type"] == "switchboard:passControl"]
    assert len(passes) == 1
    assert passes[0]["payload"]["metadata"] == {"attempt": 1}


async def test_a_repeated_next_pass_with_an_app_key_moves_control_on_again(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    # The documented exception: without an identified caller "next" follows the active one.
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}/passControl"
    for _ in range(2):
        assert (await hooked.api.post(path, json={"switchboardIntegration": "next"})).is_success
    await hooked.drain()
    assert _active(await hooked.conversation(conversation_id)) == "ai-agent"
    assert receiver.types().count("switchboard:passControl") == 2


async def test_a_repeated_pass_by_name_is_disregarded(
    hooked: Harness, receiver: WebhookReceiver, as_ai: httpx.AsyncClient
) -> None:
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}/passControl"
    for _ in range(2):
        body = {"switchboardIntegration": "zd-agentWorkspace"}
        assert (await as_ai.post(path, json=body)).status_code == 200
    await hooked.drain()
    assert receiver.types().count("switchboard:passControl") == 1


async def test_integration_scope_release_and_accept_need_the_right_integration(
    hooked: Harness, as_ai: httpx.AsyncClient
) -> None:
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}"
    await as_ai.post(f"{path}/passControl", json={"switchboardIntegration": "zd-agentWorkspace"})
    # The AI agent is on standby now: it may not release the agents' conversation.
    released = await as_ai.post(f"{path}/releaseControl")
    assert released.status_code == 403
    assert released.json()["errors"][0]["code"] == "forbidden"
    assert _active(await hooked.conversation(conversation_id)) == "zd-agentWorkspace"
    # Offered to the agent workspace, not to the AI agent: the AI agent may not accept.
    await hooked.api.post(f"{path}/passControl", json={"switchboardIntegration": "ai-agent"})
    await hooked.api.post(f"{path}/offerControl", json={"switchboardIntegration": "next"})
    assert (await as_ai.post(f"{path}/acceptControl", json={})).status_code == 403
    # Offered to the AI agent, it accepts, and as the active integration it may release.
    await hooked.api.post(
        f"{path}/passControl", json={"switchboardIntegration": "zd-agentWorkspace"}
    )
    await hooked.api.post(f"{path}/offerControl", json={"switchboardIntegration": "ai-agent"})
    assert (await as_ai.post(f"{path}/acceptControl", json={})).status_code == 200
    assert (await as_ai.post(f"{path}/releaseControl")).status_code == 200
    assert _active(await hooked.conversation(conversation_id)) is None


async def test_accept_control_needs_a_body_release_control_does_not(
    hooked: Harness, receiver: WebhookReceiver
) -> None:
    conversation_id = await _conversation(hooked)
    path = f"/conversations/{conversation_id}"
    await hooked.api.post(f"{path}/offerControl", json={"switchboardIntegration": "next"})
    assert (await hooked.api.post(f"{path}/acceptControl")).status_code == 400
    assert (await hooked.api.post(f"{path}/acceptControl", json={})).status_code == 200
    assert (await hooked.api.post(f"{path}/releaseControl")).status_code == 200
