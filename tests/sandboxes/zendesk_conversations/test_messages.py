"""Messages: post text, file and image as business or user; list backwards in pages of 100."""

from __future__ import annotations

from typing import Any

import pytest

from sandboxes.zendesk_conversations import SunshineSandboxConfig
from tests.sandboxes.zendesk_conversations.harness import Harness, serve_sandbox


async def _conversation(harness: Harness, external_id: str = "crm-1") -> str:
    user_id = await harness.create_user(
        external_id, profile={"givenName": "Ada", "surname": "Lovelace"}
    )
    return await harness.create_conversation(user_id)


async def test_business_text_message_answers_201_with_the_created_message(
    sunshine: Harness,
) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/messages",
        json={
            "author": {"type": "business", "displayName": "Deskstream AI", "subtypes": ["AI"]},
            "content": {"type": "text", "text": "Hello! How can I help?"},
            "metadata": {"deskstream_id": "m-1"},
        },
    )
    assert response.status_code == 201
    [message] = response.json()["messages"]
    assert message["author"] == {
        "type": "business",
        "displayName": "Deskstream AI",
        "subtypes": ["AI"],
    }
    assert message["content"] == {"type": "text", "text": "Hello! How can I help?"}
    assert message["source"] == {"type": "api:conversations"}
    assert message["metadata"] == {"deskstream_id": "m-1"}
    assert message["received"] == "2025-03-01T09:00:00.000Z"
    conversation = await sunshine.conversation(conversation_id)
    assert conversation["lastUpdatedAt"] == message["received"]


async def test_user_message_by_external_id_names_the_user(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/messages",
        json={
            "author": {"type": "user", "userExternalId": "crm-1"},
            "content": {"type": "text", "text": "My invoice is wrong"},
        },
    )
    assert response.status_code == 201
    author = response.json()["messages"][0]["author"]
    user = (await sunshine.api.get("/users/crm-1")).json()["user"]
    assert author == {"type": "user", "userId": user["id"], "displayName": "Ada Lovelace"}


async def test_a_user_who_is_not_a_participant_cannot_author(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    await sunshine.create_user("stranger")
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/messages",
        json={
            "author": {"type": "user", "userExternalId": "stranger"},
            "content": {"type": "text", "text": "hi"},
        },
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            {"type": "file", "mediaUrl": "https://files.example.org/docs/invoice%2042.pdf"},
            {"mediaType": "application/pdf", "altText": "invoice 42.pdf"},
            id="file",
        ),
        pytest.param(
            {"type": "image", "mediaUrl": "https://cdn.example.org/shot.png", "altText": "Screen"},
            {"mediaType": "image/png", "altText": "Screen"},
            id="image",
        ),
        pytest.param(
            {"type": "file", "mediaUrl": "https://x.example.org/blob", "text": "see attached"},
            {"mediaType": "application/octet-stream", "altText": "blob", "text": "see attached"},
            id="file-unknown-type",
        ),
    ],
)
async def test_media_messages_get_media_type_and_alt_text(
    sunshine: Harness, content: dict[str, Any], expected: dict[str, Any]
) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(
        f"/conversations/{conversation_id}/messages",
        json={"author": {"type": "business"}, "content": content},
    )
    assert response.status_code == 201
    stored = response.json()["messages"][0]["content"]
    assert stored == {**content, **expected}


INVALID_MESSAGES: list[tuple[str, Any]] = [
    ("no-author", {"content": {"type": "text", "text": "hi"}}),
    ("bot-author", {"author": {"type": "bot"}, "content": {"type": "text", "text": "hi"}}),
    (
        "user-without-reference",
        {"author": {"type": "user"}, "content": {"type": "text", "text": "hi"}},
    ),
    (
        "business-with-user-id",
        {"author": {"type": "business", "userId": "x"}, "content": {"type": "text", "text": "hi"}},
    ),
    (
        "agent-subtype-on-input",
        {
            "author": {"type": "business", "subtypes": ["agent"]},
            "content": {"type": "text", "text": "hi"},
        },
    ),
    ("no-content", {"author": {"type": "business"}}),
    (
        "unknown-content-type",
        {"author": {"type": "business"}, "content": {"type": "video", "text": "hi"}},
    ),
    ("text-missing", {"author": {"type": "business"}, "content": {"type": "text"}}),
    (
        "text-too-long",
        {"author": {"type": "business"}, "content": {"type": "text", "text": "x" * 4097}},
    ),
    ("file-without-url", {"author": {"type": "business"}, "content": {"type": "file"}}),
    (
        "image-relative-url",
        {"author": {"type": "business"}, "content": {"type": "image", "mediaUrl": "/a.png"}},
    ),
    (
        "metadata-nested",
        {
            "author": {"type": "business"},
            "content": {"type": "text", "text": "hi"},
            "metadata": {"a": [1]},
        },
    ),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in INVALID_MESSAGES])
async def test_invalid_messages_answer_400(sunshine: Harness, body: Any) -> None:
    conversation_id = await _conversation(sunshine)
    response = await sunshine.api.post(f"/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"


async def test_message_to_unknown_conversation_answers_404(sunshine: Harness) -> None:
    response = await sunshine.api.post(
        "/conversations/0123456789abcdef01234567/messages",
        json={"author": {"type": "business"}, "content": {"type": "text", "text": "hi"}},
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "conversation_not_found"


async def test_list_messages_pages_backwards_100_at_a_time(sunshine: Harness) -> None:
    conversation_id = await _conversation(sunshine)
    ids = [(await sunshine.post_text(conversation_id, f"m{i}"))["id"] for i in range(250)]
    path = f"/conversations/{conversation_id}/messages"

    latest = (await sunshine.api.get(path)).json()
    assert [m["id"] for m in latest["messages"]] == ids[150:]
    assert latest["meta"] == {"hasMore": True, "beforeCursor": ids[150]}
    assert latest["links"]["prev"].endswith(f"{path}?page[before]={ids[150]}")
    assert "next" not in latest["links"]

    middle = (await sunshine.api.get(path, params={"page[before]": ids[150]})).json()
    assert [m["id"] for m in middle["messages"]] == ids[50:150]
    assert middle["meta"] == {"hasMore": True, "beforeCursor": ids[50], "afterCursor": ids[149]}

    oldest = (await sunshine.api.get(path, params={"page[before]": ids[50]})).json()
    assert [m["id"] for m in oldest["messages"]] == ids[:50]
    assert oldest["meta"] == {"hasMore": False, "afterCursor": ids[49]}

    forward = (await sunshine.api.get(path, params={"page[after]": ids[49]})).json()
    assert [m["id"] for m in forward["messages"]] == ids[50:150]
    assert forward["meta"]["hasMore"] is True


async def test_list_messages_of_unknown_conversation_answers_404(sunshine: Harness) -> None:
    response = await sunshine.api.get("/conversations/0123456789abcdef01234567/messages")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "not_found", "title": "Resource not found"}]}


async def test_a_full_conversation_answers_423_locked() -> None:
    config = SunshineSandboxConfig(max_messages_per_conversation=3)
    async with serve_sandbox(config=config) as harness:
        conversation_id = await _conversation(harness)
        for i in range(3):
            await harness.post_text(conversation_id, f"m{i}")
        response = await harness.api.post(
            f"/conversations/{conversation_id}/messages",
            json={"author": {"type": "business"}, "content": {"type": "text", "text": "one more"}},
        )
    assert response.status_code == 423
    assert response.json() == {
        "errors": [{"code": "locked", "title": "Message limit of 3 per conversation reached."}]
    }
