"""The Zendesk Conversations actors against the real sandbox: a widget chat the AI agent
answers and hands off, with the switchboard webhooks a sync listens to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandboxes.zendesk_conversations.actors import (
    SunshineAIAgent,
    SunshineEndUser,
    SunshineHumanAgent,
    sunshine_http,
    widget_http,
)
from schemas.errors import FatalAPIError
from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver


@dataclass
class Chat:
    harness: Harness
    receiver: WebhookReceiver
    user: SunshineEndUser
    ai: SunshineAIAgent
    agent: SunshineHumanAgent

    async def events(self, kind: str) -> list[dict[str, Any]]:
        await self.harness.drain()
        return [
            event
            for received in self.receiver.received
            for event in received.json["events"]
            if event["type"] == kind
        ]

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        response = await self.harness.api.get(f"/conversations/{conversation_id}/messages")
        messages = response.json()["messages"]
        assert isinstance(messages, list)
        return messages


@pytest.fixture
async def chat(hooked: Harness, receiver: WebhookReceiver) -> AsyncIterator[Chat]:
    config = hooked.config
    async with (
        sunshine_http(hooked.url, key_id=config.key_id, key_secret=config.key_secret) as api,
        widget_http(hooked.url) as widget,
    ):
        user = SunshineEndUser(
            api,
            widget,
            app_id=config.app_id,
            external_id="cust-00042",
            given_name="Ann",
            surname="Lee",
            email="ann@northwind.example",
        )
        ai = SunshineAIAgent(api, app_id=config.app_id)
        agent = SunshineHumanAgent(widget, agent_id="900000000011", name="Grace Hopper")
        yield Chat(hooked, receiver, user, ai, agent)


async def test_the_widget_chat_starts_with_the_ai_agent_in_control(chat: Chat) -> None:
    conversation_id = await chat.user.open_conversation()
    await chat.user.say(conversation_id, "How do I reset my password?")
    await chat.ai.answer(conversation_id, "Settings > Security > Reset password.")
    conversation = await chat.harness.conversation(conversation_id)
    assert conversation["activeSwitchboardIntegration"]["name"] == "ai-agent"
    said, answered = await chat.messages(conversation_id)
    assert said["author"]["type"] == "user"
    assert said["author"]["userId"] == chat.user.user_id
    assert said["source"]["type"] == "web"
    assert answered["author"] == {"type": "business", "displayName": "Aria (AI agent)"}
    user = (await chat.harness.api.get("/users/cust-00042")).json()["user"]
    assert user["profile"]["email"] == "ann@northwind.example"
    assert [e["type"] for e in await chat.events("conversation:create")] == ["conversation:create"]


async def test_the_hand_off_fires_pass_control_with_its_metadata(chat: Chat) -> None:
    conversation_id = await chat.user.open_conversation()
    await chat.user.say(conversation_id, "Please get me a human.")
    await chat.ai.hand_off(
        conversation_id,
        reason="customer_request",
        sentiment="negative",
        summary="Ann (pro) cannot sign in; asked for a person.",
    )
    [passed] = await chat.events("switchboard:passControl")
    payload = passed["payload"]
    assert payload["conversation"]["id"] == conversation_id
    assert payload["conversation"]["activeSwitchboardIntegration"]["name"] == "zd-agentWorkspace"
    assert payload["conversation"]["activeSwitchboardIntegration"]["integrationType"] == (
        "zd:agentWorkspace"
    )
    assert payload["metadata"] == {
        "reason": "customer_request",
        "sentiment": "negative",
        "summary": "Ann (pro) cannot sign in; asked for a person.",
    }
    assert await chat.agent.inbox() == [conversation_id]


async def test_the_human_agent_replies_and_releases(chat: Chat) -> None:
    conversation_id = await chat.user.open_conversation()
    await chat.ai.hand_off(conversation_id, reason="policy", sentiment="neutral", summary="s")
    await chat.agent.reply(conversation_id, "Hi Ann, I'm Grace. Let me check.")
    await chat.user.say(conversation_id, "Thanks!")
    await chat.agent.release(conversation_id)
    reply = (await chat.messages(conversation_id))[0]
    assert reply["author"]["subtypes"] == ["agent"]
    assert reply["author"]["displayName"] == "Grace Hopper"
    assert reply["metadata"] == {"__zendesk_msg.agent.id": "900000000011"}
    [released] = await chat.events("switchboard:releaseControl")
    assert released["payload"]["reason"] == "ticketClosed"
    assert await chat.agent.inbox() == []
    agent_messages = [
        e
        for e in await chat.events("conversation:message")
        if e["payload"]["message"]["author"].get("subtypes") == ["agent"]
    ]
    assert len(agent_messages) == 1


async def test_the_ai_agent_releases_what_it_resolved(chat: Chat) -> None:
    conversation_id = await chat.user.open_conversation()
    await chat.ai.release(conversation_id)
    [released] = await chat.events("switchboard:releaseControl")
    assert released["payload"]["conversation"]["id"] == conversation_id
    assert "activeSwitchboardIntegration" not in released["payload"]["conversation"]


async def test_a_returning_user_reuses_the_sunshine_user(chat: Chat) -> None:
    first = await chat.user.open_conversation()
    config = chat.harness.config
    again = SunshineEndUser(
        chat.user.api,
        chat.user.widget,
        app_id=config.app_id,
        external_id="cust-00042",
        given_name="Ann",
        surname="Lee",
        email="ann@northwind.example",
    )
    second = await again.open_conversation()  # its POST /users answers 409: fetched instead
    assert first != second
    assert again.user_id == chat.user.user_id
    assert len(chat.harness.sandbox.state.users) == 1


async def test_the_agent_cannot_reply_before_the_hand_off(chat: Chat) -> None:
    conversation_id = await chat.user.open_conversation()
    with pytest.raises(FatalAPIError) as caught:
        await chat.agent.reply(conversation_id, "Hello?")
    assert caught.value.status == 409
