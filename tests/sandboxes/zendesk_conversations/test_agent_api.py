"""The sandbox-only agent workspace and Web Widget endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.zendesk_conversations.harness import Harness


async def _escalated(harness: Harness, external_id: str = "crm-1") -> str:
    conversation_id = await harness.create_conversation(await harness.create_user(external_id))
    response = await harness.api.post(
        f"/conversations/{conversation_id}/passControl",
        json={"switchboardIntegration": "zd-agentWorkspace"},
    )
    assert response.status_code == 200
    return conversation_id


async def test_agent_replies_show_in_the_conversation_as_business_messages(
    sunshine: Harness,
) -> None:
    conversation_id = await _escalated(sunshine)
    agent = f"/_sandbox/agent/conversations/{conversation_id}"
    text = await sunshine.admin.post(f"{agent}/reply", json={"text": "Hi, I'm Grace."})
    attachment = await sunshine.admin.post(
        f"{agent}/reply",
        json={"type": "file", "mediaUrl": "https://files.example.org/refund.pdf", "text": "Form"},
    )
    image = await sunshine.admin.post(
        f"{agent}/reply", json={"type": "image", "mediaUrl": "https://cdn.example.org/a.jpg"}
    )
    assert text.status_code == attachment.status_code == image.status_code == 201
    listed = (await sunshine.api.get(f"/conversations/{conversation_id}/messages")).json()
    contents = [m["content"] for m in listed["messages"]]
    assert contents == [
        {"type": "text", "text": "Hi, I'm Grace."},
        {
            "type": "file",
            "text": "Form",
            "mediaUrl": "https://files.example.org/refund.pdf",
            "mediaType": "application/pdf",
            "altText": "refund.pdf",
        },
        {
            "type": "image",
            "mediaUrl": "https://cdn.example.org/a.jpg",
            "mediaType": "image/jpeg",
            "altText": "a.jpg",
        },
    ]
    for message in listed["messages"]:
        assert message["author"]["type"] == "business"
        assert message["author"]["subtypes"] == ["agent"]
        assert message["source"]["type"] == "zd:agentWorkspace"


async def test_agent_inbox_lists_what_the_agent_workspace_controls(sunshine: Harness) -> None:
    escalated = await _escalated(sunshine)
    await sunshine.create_conversation(
        (await sunshine.api.get("/users/crm-1")).json()["user"]["id"]
    )
    inbox = (await sunshine.admin.get("/_sandbox/agent/conversations")).json()
    assert [c["id"] for c in inbox["conversations"]] == [escalated]


async def test_agent_release_and_pass_back(sunshine: Harness) -> None:
    released_id = await _escalated(sunshine)
    response = await sunshine.admin.post(f"/_sandbox/agent/conversations/{released_id}/release")
    assert response.status_code == 200
    assert "activeSwitchboardIntegration" not in await sunshine.conversation(released_id)

    passed_id = await _escalated(sunshine, "crm-2")
    response = await sunshine.admin.post(
        f"/_sandbox/agent/conversations/{passed_id}/pass", json={"reason": "transferToEmail"}
    )
    assert response.status_code == 200
    active = (await sunshine.conversation(passed_id))["activeSwitchboardIntegration"]
    assert active["name"] == "ai-agent"


async def test_agent_accepts_an_offer(sunshine: Harness) -> None:
    conversation_id = await sunshine.create_conversation(await sunshine.create_user("crm-1"))
    agent = f"/_sandbox/agent/conversations/{conversation_id}"
    refused = await sunshine.admin.post(f"{agent}/accept")
    assert refused.status_code == 409
    await sunshine.api.post(
        f"/conversations/{conversation_id}/offerControl", json={"switchboardIntegration": "next"}
    )
    assert (await sunshine.admin.post(f"{agent}/accept")).status_code == 200
    active = (await sunshine.conversation(conversation_id))["activeSwitchboardIntegration"]
    assert active["name"] == "zd-agentWorkspace"


@pytest.mark.parametrize(
    ("action", "body"),
    [
        pytest.param("reply", {"text": "too early"}, id="reply"),
        pytest.param("release", {}, id="release"),
        pytest.param("pass", {}, id="pass"),
    ],
)
async def test_the_agent_cannot_act_before_the_hand_over(
    sunshine: Harness, action: str, body: dict[str, Any]
) -> None:
    conversation_id = await sunshine.create_conversation(await sunshine.create_user("crm-1"))
    response = await sunshine.admin.post(
        f"/_sandbox/agent/conversations/{conversation_id}/{action}", json=body
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "conflict"
    assert (await sunshine.api.get(f"/conversations/{conversation_id}/messages")).json()[
        "messages"
    ] == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-text"),
        pytest.param({"type": "video", "mediaUrl": "https://x.example.org/v.mp4"}, id="video"),
        pytest.param({"type": "file"}, id="file-without-url"),
    ],
)
async def test_invalid_agent_replies_answer_400(sunshine: Harness, body: dict[str, Any]) -> None:
    conversation_id = await _escalated(sunshine)
    response = await sunshine.admin.post(
        f"/_sandbox/agent/conversations/{conversation_id}/reply", json=body
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"


async def test_end_user_messages_come_from_the_widget(sunshine: Harness) -> None:
    conversation_id = await sunshine.create_conversation(await sunshine.create_user("crm-1"))
    response = await sunshine.admin.post(
        f"/_sandbox/enduser/conversations/{conversation_id}/messages", json={"text": "hello"}
    )
    assert response.status_code == 201
    message = response.json()["messages"][0]
    assert message["author"]["type"] == "user"
    assert message["source"] == {"type": "web", "integrationId": sunshine.config.web_integration_id}
    missing = await sunshine.admin.post(
        "/_sandbox/enduser/conversations/0123456789abcdef01234567/messages", json={"text": "x"}
    )
    assert missing.status_code == 404
