"""The live chat bridge's Sunshine side against the sandbox; what it wrote is read back with
the official ``sunshine-conversations-client``, unmodified."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from sunshine_conversations_client.api.conversations_api import ConversationsApi
from sunshine_conversations_client.api.messages_api import MessagesApi
from sunshine_conversations_client.api_client import ApiClient
from sunshine_conversations_client.configuration import Configuration

from connectors.base.registry import build_chat_bridge
from connectors.base.settings import ConnectorSettings
from connectors.zendesk_conversations.bridge import CHAT_KEY, SunshineBridge
from schemas.errors import FatalAPIError
from schemas.models import (
    Actor,
    ActorKind,
    Attachment,
    Contact,
    Handoff,
    Message,
    TranscriptLine,
)
from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver, serve_sandbox

AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
HANDOFF = Handoff(
    case_id="chat-1",
    reason="customer asked for a human",
    sentiment="frustrated",
    intent="refund",
    summary="Charged twice for March; wants a refund.",
    collected_fields={"order": "A-1181"},
    customer=Contact(emails=["Ada@Example.org"], name="Ada"),
    target="live_chat",
    metadata={"ai_user_id": "u-77"},
    transcript=[
        TranscriptLine(author=Actor(kind=ActorKind.CUSTOMER), text="I was charged twice", at=AT),
        TranscriptLine(author=Actor(kind=ActorKind.AI), text="Let me check that", at=AT),
    ],
)


def settings_for(harness: Harness, *, app_id: str | None = None) -> ConnectorSettings:
    cfg = harness.config
    return ConnectorSettings(
        platform="zendesk_conversations",
        secret=SecretStr(cfg.webhook_secret),
        api_base_url=harness.url,
        api_user=cfg.integration_key_id,
        api_token=SecretStr(cfg.integration_key_secret),
        service_account_id=cfg.integration_id,
        **{"app_id": app_id or cfg.app_id},
    )


@pytest.fixture
async def desk(receiver: WebhookReceiver) -> AsyncIterator[tuple[Harness, SunshineBridge]]:
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        bridge = build_chat_bridge("chat", settings_for(harness))
        assert isinstance(bridge, SunshineBridge)
        try:
            yield harness, bridge
        finally:
            await bridge.aclose()


def _official(harness: Harness) -> ApiClient:
    cfg = harness.config
    return ApiClient(Configuration(host=harness.url, username=cfg.key_id, password=cfg.key_secret))


def _read(harness: Harness, conversation_id: str) -> tuple[Any, list[Any]]:
    """The conversation and its messages, through the official client."""
    app = harness.config.app_id
    with _official(harness) as client:
        conversation = ConversationsApi(client).get_conversation(app, conversation_id)
        messages = MessagesApi(client).list_messages(app, conversation_id)
    assert messages.messages is not None
    return conversation.conversation, messages.messages


async def test_a_handoff_opens_one_conversation_with_the_summary_first_and_the_agents_in_control(
    desk: tuple[Harness, SunshineBridge], receiver: WebhookReceiver
) -> None:
    harness, bridge = desk
    session = await bridge.start("chat-1", HANDOFF, marker="e-1", possibly_done=False)
    # Read again after a crash: the same user and conversation, nothing posted twice.
    again = await bridge.start("chat-1", HANDOFF, marker="e-1", possibly_done=True)
    assert again == session
    conversation, messages = await asyncio.to_thread(_read, harness, session.conversation_id)
    assert conversation.metadata == {CHAT_KEY: "chat-1"}
    assert conversation.active_switchboard_integration.name == "zd-agentWorkspace"
    [summary] = messages
    assert summary.author.type == "business"
    text = summary.content.actual_instance.text
    assert text.startswith("Handed over by the AI agent: customer asked for a human")
    assert "Summary: Charged twice for March" in text
    assert "order: A-1181" in text
    assert text.endswith("[customer] I was charged twice\n[ai] Let me check that")
    await harness.drain()
    passes = [e for e in receiver.events() if e["type"] == "switchboard:passControl"]
    assert len(passes) == 1  # the second pass to the holder was disregarded by the platform
    assert passes[0]["payload"]["metadata"]["reason"] == "customer asked for a human"
    assert passes[0]["payload"]["metadata"][CHAT_KEY] == "chat-1"
    assert passes[0]["payload"]["metadata"]["ai_user_id"] == "u-77"  # the AI side's own
    user = (await harness.api.get("/users/ada@example.org")).json()["user"]
    assert user["id"] == session.user_id
    assert user["profile"] == {"email": "ada@example.org", "givenName": "Ada"}
    # The customer's user is found by email: a second chat of theirs reuses it.
    other = await bridge.start("chat-2", HANDOFF, marker="e-2", possibly_done=False)
    assert other.user_id == session.user_id
    assert other.conversation_id != session.conversation_id
    assert await bridge.chat_of(other.conversation_id) == "chat-2"


async def test_the_bridge_knows_the_chats_it_opened_or_asked_for_without_asking_again(
    desk: tuple[Harness, SunshineBridge],
) -> None:
    # What the chat relay relies on to keep desk calls out of its batches.
    harness, bridge = desk
    session = await bridge.start("chat-1", HANDOFF, marker="e-1", possibly_done=False)
    assert bridge.knows(session.conversation_id)
    # A fresh bridge (a restarted worker) must ask the desk once, then knows.
    fresh = build_chat_bridge("chat", settings_for(harness))
    try:
        assert not fresh.knows(session.conversation_id)
        assert await fresh.chat_of(session.conversation_id) == "chat-1"
        assert fresh.knows(session.conversation_id)
        # A conversation the desk has, not ours: known as nobody's once asked.
        other = await harness.api.post(
            "/conversations",
            json={"type": "personal", "participants": [{"userId": session.user_id}]},
        )
        assert other.status_code == 201, other.text
        not_ours = other.json()["conversation"]["id"]
        assert await fresh.chat_of(not_ours) is None
        assert fresh.knows(not_ours)
        with pytest.raises(FatalAPIError, match="404"):  # one the desk does not have
            await fresh.chat_of("0" * 24)
        assert not fresh.knows("0" * 24)
    finally:
        await fresh.aclose()


async def test_customer_messages_are_posted_once_as_the_user_with_their_media(
    desk: tuple[Harness, SunshineBridge],
) -> None:
    harness, bridge = desk
    session = await bridge.start("chat-1", HANDOFF, marker="e-1", possibly_done=False)
    text = Message(
        case_id="chat-1",
        author=Actor(kind=ActorKind.CUSTOMER),
        body_text="Here is the receipt",
        public=True,
        created_at=AT,
        attachments=[
            Attachment(
                name="receipt.png",
                content_type="image/png",
                source_url="https://files.example/receipt.png",
            ),
            Attachment(
                name="invoice.pdf",
                content_type="application/pdf",
                source_url="https://files.example/invoice.pdf",
            ),
        ],
    )
    assert await bridge.forward(session, text, marker="m-1", possibly_done=False) == 2
    # Possibly done before (read again after a crash): what carries the marker is not re-posted.
    assert await bridge.forward(session, text, marker="m-1", possibly_done=True) == 0
    _, messages = await asyncio.to_thread(_read, harness, session.conversation_id)
    posted = [m for m in messages if m.author.type == "user"]
    contents = [m.content.actual_instance for m in posted]
    assert [(c.type, c.media_url) for c in contents] == [
        ("image", "https://files.example/receipt.png"),
        ("file", "https://files.example/invoice.pdf"),
    ]
    assert contents[0].text == "Here is the receipt"
    assert {m.author.user_id for m in posted} == {session.user_id}


async def test_a_wrong_app_id_is_a_fatal_error_that_says_what_to_check(
    desk: tuple[Harness, SunshineBridge],
) -> None:
    harness, _ = desk
    bridge = build_chat_bridge("chat", settings_for(harness, app_id="0" * 24))
    try:
        with pytest.raises(FatalAPIError, match="check the connector's app id"):
            await bridge.start("chat-1", HANDOFF, marker="e-1", possibly_done=False)
    finally:
        await bridge.aclose()
