"""The switchboard: its integrations, and pass/offer/accept/release control with metadata."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandboxes.zendesk_conversations.harness import Harness


async def _conversation(harness: Harness) -> str:
    return await harness.create_conversation(await harness.create_user("crm-1"))


def _active_name(conversation: dict[str, Any]) -> str | None:
    active = conversation.get("activeSwitchboardIntegration")
    return None if active is None else str(active["name"])


async def test_the_app_has_one_enabled_switchboard_with_ai_agent_and_agent_workspace(
    sunshine: Harness,
) -> None:
    cfg = sunshine.config
    boards = (await sunshine.api.get("/switchboards")).json()
    assert boards == {
        "switchboards": [
            {
                "id": cfg.switchboard_id,
                "enabled": True,
                "defaultSwitchboardIntegrationId": cfg.ai_switchboard_integration_id,
            }
        ]
    }
    listed = await sunshine.api.get(f"/switchboards/{cfg.switchboard_id}/switchboardIntegrations")
    by_name = {s["name"]: s for s in listed.json()["switchboardIntegrations"]}
    assert set(by_name) == {"ai-agent", "zd-agentWorkspace"}
    assert by_name["zd-agentWorkspace"]["integrationType"] == "zd:agentWorkspace"
    assert by_name["ai-agent"]["deliverStandbyEvents"] is True
    assert by_name["ai-agent"]["nextSwitchboardIntegrationId"] == by_name["zd-agentWorkspace"]["id"]
    assert by_name["zd-agentWorkspace"]["nextSwitchboardIntegrationId"] == by_name["ai-agent"]["id"]


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("zd-agentWorkspace", id="by-name"),
        pytest.param("5f0c9a1e3b2d4c0012ab3902", id="by-id"),
        pytest.param("zd:agentWorkspace", id="by-integration-type"),
        pytest.param("next", id="next"),
    ],
)
async def test_pass_control_makes_the_target_active(sunshine: Harness, target: str) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={"switchboardIntegration": target, "metadata": {"first_message_id": "abc"}},
    )
    assert response.status_code == 200
    assert response.json() == {}
    conversation = await sunshine.conversation(conversation_id)
    assert _active_name(conversation) == "zd-agentWorkspace"


async def test_release_nullifies_control_until_the_next_user_message(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    path = f"/conversations/{conversation_id}"
    await sunshine.api.post(f"{path}/passControl", json={"switchboardIntegration": "next"})
    released = await sunshine.api.post(f"{path}/releaseControl", json={"reason": "ticketClosed"})
    assert released.status_code == 200
    conversation = await sunshine.conversation(conversation_id)
    assert "activeSwitchboardIntegration" not in conversation
    # A business message does not pick an integration; the next user message does.
    await sunshine.post_text(conversation_id, "Anything else?")
    assert _active_name(await sunshine.conversation(conversation_id)) is None
    await sunshine.api.post(
        f"{path}/messages",
        json={
            "author": {"type": "user", "userExternalId": "crm-1"},
            "content": {"type": "text", "text": "hi again"},
        },
    )
    assert _active_name(await sunshine.conversation(conversation_id)) == "ai-agent"


async def test_release_control_accepts_an_empty_body(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(f"/conversations/{conversation_id}/releaseControl")
    assert response.status_code == 200


async def test_offer_then_accept_transfers_control(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    path = f"/conversations/{conversation_id}"
    offered = await sunshine.api.post(
        f"{path}/offerControl", json={"switchboardIntegration": "zd-agentWorkspace"}
    )
    assert offered.status_code == 200
    conversation = await sunshine.conversation(conversation_id)
    assert _active_name(conversation) == "ai-agent"
    assert conversation["pendingSwitchboardIntegration"]["name"] == "zd-agentWorkspace"
    accepted = await sunshine.api.post(f"{path}/acceptControl", json={})
    assert accepted.status_code == 200
    conversation = await sunshine.conversation(conversation_id)
    assert _active_name(conversation) == "zd-agentWorkspace"
    assert "pendingSwitchboardIntegration" not in conversation


async def test_pass_control_clears_a_pending_offer(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    path = f"/conversations/{conversation_id}"
    await sunshine.api.post(f"{path}/offerControl", json={"switchboardIntegration": "next"})
    await sunshine.api.post(f"{path}/passControl", json={"switchboardIntegration": "next"})
    conversation = await sunshine.conversation(conversation_id)
    assert _active_name(conversation) == "zd-agentWorkspace"
    assert "pendingSwitchboardIntegration" not in conversation


def _metadata_of_size(size: int) -> dict[str, str]:
    """A one-key metadata object whose compact JSON is exactly ``size`` bytes."""
    overhead = len(json.dumps({"k": ""}, separators=(",", ":")))
    return {"k": "x" * (size - overhead)}


@pytest.mark.parametrize(
    ("action", "body", "status", "code"),
    [
        pytest.param("passControl", {}, 400, "bad_request", id="pass-without-target"),
        pytest.param(
            "passControl",
            {"switchboardIntegration": 5},
            400,
            "bad_request",
            id="pass-target-not-string",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "nobody"},
            404,
            "switchboard_integration_not_found",
            id="pass-unknown-target",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "next", "metadata": _metadata_of_size(4097)},
            400,
            "bad_request",
            id="pass-metadata-over-4kb",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "next", "metadata": {"a": {"b": "c"}}},
            400,
            "bad_request",
            id="pass-metadata-nested",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "next", "metadata": {"a": None}},
            400,
            "bad_request",
            id="pass-metadata-null-value",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "next", "metadata": ["a"]},
            400,
            "bad_request",
            id="pass-metadata-array",
        ),
        pytest.param(
            "passControl",
            {"switchboardIntegration": "next", "reason": "bored"},
            400,
            "bad_request",
            id="pass-unknown-reason",
        ),
        pytest.param(
            "offerControl",
            {"switchboardIntegration": "ai-agent"},
            400,
            "bad_request",
            id="offer-to-active",
        ),
        pytest.param("offerControl", {}, 400, "bad_request", id="offer-without-target"),
        pytest.param("acceptControl", {}, 400, "bad_request", id="accept-without-offer"),
        pytest.param(
            "releaseControl",
            {"metadata": _metadata_of_size(5000)},
            400,
            "bad_request",
            id="release-metadata-over-4kb",
        ),
    ],
)
async def test_invalid_switchboard_actions(
    sunshine: Harness, action: str, body: dict[str, Any], status: int, code: str
) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(f"/conversations/{conversation_id}/{action}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code
    # A refused action changes nothing.
    conversation = await sunshine.conversation(conversation_id)
    assert _active_name(conversation) == "ai-agent"
    assert "pendingSwitchboardIntegration" not in conversation


async def test_metadata_of_exactly_4kb_is_accepted(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={"switchboardIntegration": "next", "metadata": _metadata_of_size(4096)},
    )
    assert response.status_code == 200


async def test_ambiguous_integration_type_is_refused(sunshine: Harness) -> None:
    cfg = sunshine.config
    created = await sunshine.api.post(
        f"/switchboards/{cfg.switchboard_id}/switchboardIntegrations",
        json={"name": "second-bot", "integrationId": "5f0c9a1e3b2d4c0012ab3699"},
    )
    assert created.status_code == 201
    assert created.json()["switchboardIntegration"]["integrationType"] == "custom"
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl", json={"switchboardIntegration": "custom"}
    )
    assert response.status_code == 400
    by_name = await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={"switchboardIntegration": "second-bot"},
    )
    assert by_name.status_code == 200


async def test_switchboard_actions_on_unknown_conversation_answer_404(sunshine: Harness) -> None:
    response = await sunshine.api.post(
        "/conversations/0123456789abcdef01234567/passControl",
        json={"switchboardIntegration": "next"},
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "conversation_not_found"


async def test_a_disabled_switchboard_refuses_control_actions(sunshine: Harness) -> None:
    cfg = sunshine.config
    patched = await sunshine.api.patch(
        f"/switchboards/{cfg.switchboard_id}", json={"enabled": False}
    )
    assert patched.json()["switchboard"]["enabled"] is False
    conversation_id = await _conversation(sunshine)
    assert "activeSwitchboardIntegration" not in await sunshine.conversation(conversation_id)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/passControl", json={"switchboardIntegration": "next"}
    )
    assert response.status_code == 400


async def test_switchboard_integration_management(sunshine: Harness) -> None:
    cfg = sunshine.config
    base = f"/switchboards/{cfg.switchboard_id}/switchboardIntegrations"
    bad_name = await sunshine.api.post(base, json={"name": "has space", "integrationType": "x"})
    assert bad_name.status_code == 400
    no_link = await sunshine.api.post(base, json={"name": "lonely"})
    assert no_link.status_code == 400
    for i in range(8):
        ok = await sunshine.api.post(base, json={"name": f"bot-{i}", "integrationType": f"t{i}"})
        assert ok.status_code == 201
    eleventh = await sunshine.api.post(base, json={"name": "bot-x", "integrationType": "tx"})
    assert eleventh.status_code == 400
    assert eleventh.json()["errors"][0]["code"] == "too_many_switchboard_integrations"
    patched = await sunshine.api.patch(
        f"{base}/{cfg.ai_switchboard_integration_id}", json={"deliverStandbyEvents": False}
    )
    assert patched.json()["switchboardIntegration"]["deliverStandbyEvents"] is False
    missing = await sunshine.api.patch(f"{base}/0123456789abcdef01234567", json={})
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "switchboard_integration_not_found"
    unknown_board = await sunshine.api.get(
        "/switchboards/0123456789abcdef01234567/switchboardIntegrations"
    )
    assert unknown_board.json()["errors"][0]["code"] == "switchboard_not_found"
