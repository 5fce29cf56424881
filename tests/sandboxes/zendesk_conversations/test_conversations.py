"""Conversations: create personal ones, list a user's with cursor pages, fetch, update."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.zendesk_conversations.harness import Harness


async def test_create_personal_conversation_by_user_id(sunshine: Harness) -> None:
    user_id = await sunshine.create_user("crm-1")
    response = await sunshine.api.post(
        "/conversations",
        json={
            "type": "personal",
            "participants": [{"userId": user_id}],
            "displayName": "Billing question",
            "metadata": {"lang": "en-ca"},
        },
    )
    assert response.status_code == 201
    conversation = response.json()["conversation"]
    assert conversation["type"] == "personal"
    assert conversation["isDefault"] is True
    assert conversation["displayName"] == "Billing question"
    assert conversation["metadata"] == {"lang": "en-ca"}
    assert conversation["createdAt"] == conversation["lastUpdatedAt"]
    # The switchboard's default integration (the AI agent) controls a new conversation.
    assert conversation["activeSwitchboardIntegration"] == {
        "id": sunshine.config.ai_switchboard_integration_id,
        "name": "ai-agent",
        "integrationId": sunshine.config.integration_id,
        "integrationType": "custom",
    }
    assert "pendingSwitchboardIntegration" not in conversation


async def test_create_by_user_external_id_and_only_the_first_is_default(sunshine: Harness) -> None:
    await sunshine.create_user("crm-2")
    body = {"type": "personal", "participants": [{"userExternalId": "crm-2"}]}
    first = await sunshine.api.post("/conversations", json=body)
    second = await sunshine.api.post("/conversations", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["conversation"]["isDefault"] is True
    assert second.json()["conversation"]["isDefault"] is False


async def test_participant_that_does_not_exist_answers_404_user_not_found(
    sunshine: Harness,
) -> None:
    response = await sunshine.api.post(
        "/conversations", json={"type": "personal", "participants": [{"userExternalId": "ghost"}]}
    )
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "user_not_found", "title": "User not found"}]}


INVALID_CREATES: list[tuple[str, Any]] = [
    ("missing-type", {"participants": [{"userId": "U"}]}),
    ("unknown-type", {"type": "group", "participants": [{"userId": "U"}]}),
    ("sdk-group", {"type": "sdkGroup", "participants": [{"userId": "U"}]}),
    ("no-participants", {"type": "personal"}),
    ("two-participants", {"type": "personal", "participants": [{"userId": "U"}, {"userId": "U"}]}),
    (
        "both-references",
        {"type": "personal", "participants": [{"userId": "U", "userExternalId": "crm-3"}]},
    ),
    ("no-reference", {"type": "personal", "participants": [{}]}),
    (
        "metadata-nested",
        {"type": "personal", "participants": [{"userId": "U"}], "metadata": {"a": {"b": 1}}},
    ),
    (
        "display-name-too-long",
        {"type": "personal", "participants": [{"userId": "U"}], "displayName": "x" * 101},
    ),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in INVALID_CREATES])
async def test_invalid_conversation_bodies_answer_400(sunshine: Harness, body: Any) -> None:
    user_id = await sunshine.create_user("crm-3")
    for participant in body.get("participants", []):
        if participant.get("userId") == "U":
            participant["userId"] = user_id
    response = await sunshine.api.post("/conversations", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"


async def test_get_and_update_conversation(sunshine: Harness) -> None:
    conversation_id = await sunshine.create_conversation(await sunshine.create_user("crm-4"))
    response = await sunshine.api.patch(
        f"/conversations/{conversation_id}",
        json={"metadata": {"ticket": "123"}, "description": "Refund"},
    )
    assert response.status_code == 200
    fetched = await sunshine.conversation(conversation_id)
    assert fetched["metadata"] == {"ticket": "123"}
    assert fetched["description"] == "Refund"
    assert fetched == response.json()["conversation"]


async def test_unknown_conversation_answers_404_conversation_not_found(sunshine: Harness) -> None:
    response = await sunshine.api.get("/conversations/0123456789abcdef01234567")
    assert response.status_code == 404
    assert response.json() == {
        "errors": [{"code": "conversation_not_found", "title": "Conversation not found"}]
    }


async def test_list_by_user_pages_forward_with_cursors_and_links(sunshine: Harness) -> None:
    user_id = await sunshine.create_user("crm-5")
    other = await sunshine.create_user("crm-other")
    await sunshine.create_conversation(other)
    created = [await sunshine.create_conversation(user_id) for _ in range(5)]

    first = await sunshine.api.get(
        "/conversations", params={"filter[userExternalId]": "crm-5", "page[size]": "2"}
    )
    assert first.status_code == 200
    body = first.json()
    assert [c["id"] for c in body["conversations"]] == created[:2]
    assert body["meta"] == {"hasMore": True, "afterCursor": created[1]}
    assert body["links"]["next"].endswith(f"page[after]={created[1]}")
    assert "filter[userExternalId]=crm-5" in body["links"]["next"]

    seen = list(created[:2])
    after = body["meta"]["afterCursor"]
    while after:
        page = await sunshine.api.get(
            "/conversations",
            params={"filter[userId]": user_id, "page[size]": "2", "page[after]": after},
        )
        seen += [c["id"] for c in page.json()["conversations"]]
        after = page.json()["meta"].get("afterCursor")
    assert seen == created

    back = await sunshine.api.get(
        "/conversations", params={"filter[userId]": user_id, "page[before]": created[3]}
    )
    assert [c["id"] for c in back.json()["conversations"]] == created[:3]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        pytest.param({}, 400, "bad_request", id="no-filter"),
        pytest.param(
            {"filter[userId]": "a", "filter[userExternalId]": "b"},
            400,
            "bad_request",
            id="both-filters",
        ),
        pytest.param({"filter[userExternalId]": "ghost"}, 404, "user_not_found", id="unknown-user"),
        pytest.param(
            {"filter[userExternalId]": "crm-6", "page[size]": "101"},
            400,
            "bad_request",
            id="page-size-over-100",
        ),
        pytest.param(
            {"filter[userExternalId]": "crm-6", "page[size]": "0"},
            400,
            "bad_request",
            id="page-size-zero",
        ),
        pytest.param(
            {"filter[userExternalId]": "crm-6", "page[after]": "short"},
            400,
            "bad_request",
            id="cursor-not-an-id",
        ),
        pytest.param(
            {"filter[userExternalId]": "crm-6", "page[after]": "a" * 24, "page[before]": "b" * 24},
            400,
            "bad_request",
            id="after-and-before",
        ),
    ],
)
async def test_invalid_list_queries(
    sunshine: Harness, params: dict[str, str], status: int, code: str
) -> None:
    await sunshine.create_user("crm-6")
    response = await sunshine.api.get("/conversations", params=params)
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] == code
