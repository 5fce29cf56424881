"""The official ``sunshine-conversations-client`` driving the sandbox, unmodified.

The client is synchronous (urllib3), so each scenario runs in a worker thread while the
sandbox serves on the test's event loop. ``Configuration(host=URL, username=key_id,
password=secret)`` is all it takes to point it at the sandbox; ``access_token`` carries a JWT.

Not driven through it: List Conversations and the ``page`` parameter of List Messages. The
generated client serialises those deepObject query parameters as ``filter=<Python repr>``
instead of ``filter[userId]=...``, which the real API cannot read either; the httpx tests
cover those endpoints.
"""

from __future__ import annotations

import asyncio

import jwt
import pytest
from sunshine_conversations_client.api.conversations_api import ConversationsApi
from sunshine_conversations_client.api.messages_api import MessagesApi
from sunshine_conversations_client.api.switchboard_actions_api import SwitchboardActionsApi
from sunshine_conversations_client.api.switchboard_integrations_api import (
    SwitchboardIntegrationsApi,
)
from sunshine_conversations_client.api.switchboards_api import SwitchboardsApi
from sunshine_conversations_client.api.users_api import UsersApi
from sunshine_conversations_client.api_client import ApiClient
from sunshine_conversations_client.configuration import Configuration
from sunshine_conversations_client.exceptions import ApiException
from sunshine_conversations_client.model.accept_control_body import AcceptControlBody
from sunshine_conversations_client.model.author import Author
from sunshine_conversations_client.model.content import Content
from sunshine_conversations_client.model.conversation_create_body import ConversationCreateBody
from sunshine_conversations_client.model.conversation_update_body import ConversationUpdateBody
from sunshine_conversations_client.model.file_message import FileMessage
from sunshine_conversations_client.model.image_message import ImageMessage
from sunshine_conversations_client.model.message_post import MessagePost
from sunshine_conversations_client.model.offer_control_body import OfferControlBody
from sunshine_conversations_client.model.participant_sub_schema import ParticipantSubSchema
from sunshine_conversations_client.model.participant_with_user_external_id import (
    ParticipantWithUserExternalId,
)
from sunshine_conversations_client.model.pass_control_body import PassControlBody
from sunshine_conversations_client.model.profile import Profile
from sunshine_conversations_client.model.release_control_body import ReleaseControlBody
from sunshine_conversations_client.model.text_message import TextMessage
from sunshine_conversations_client.model.user_create_body import UserCreateBody
from sunshine_conversations_client.model.user_update_body import UserUpdateBody

from sandboxes.zendesk_conversations import SunshineSandboxConfig
from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver


def _client(harness: Harness, *, token: str | None = None) -> ApiClient:
    cfg = harness.config
    if token is not None:
        return ApiClient(Configuration(host=harness.url, access_token=token))
    return ApiClient(Configuration(host=harness.url, username=cfg.key_id, password=cfg.key_secret))


def _users_and_conversations(client: ApiClient, cfg: SunshineSandboxConfig) -> str:
    users = UsersApi(client)
    created = users.create_user(
        cfg.app_id,
        UserCreateBody(
            external_id="crm-1",
            profile=Profile(given_name="Ada", email="ada@example.org"),
            metadata={"plan": "pro"},
        ),
    )
    assert created.user is not None
    assert created.user.external_id == "crm-1"
    with pytest.raises(ApiException) as conflict:
        users.create_user(cfg.app_id, UserCreateBody(external_id="crm-1"))
    assert conflict.value.status == 409
    updated = users.update_user(
        cfg.app_id, "crm-1", UserUpdateBody(profile=Profile(surname="Lovelace"))
    )
    assert updated.user is not None
    assert updated.user.profile is not None
    assert (updated.user.profile.given_name, updated.user.profile.surname) == ("Ada", "Lovelace")
    fetched = users.get_user(cfg.app_id, created.user.id or "")
    assert fetched.user is not None
    assert fetched.user.external_id == "crm-1"

    conversations = ConversationsApi(client)
    participant = ParticipantSubSchema(ParticipantWithUserExternalId(user_external_id="crm-1"))
    conversation = conversations.create_conversation(
        cfg.app_id,
        ConversationCreateBody(type="personal", participants=[participant], metadata={"k": 1}),
    ).conversation
    assert conversation is not None
    assert conversation.id is not None
    assert conversation.is_default is True
    assert conversation.active_switchboard_integration is not None
    assert conversation.active_switchboard_integration.name == "ai-agent"
    conversations.update_conversation(
        cfg.app_id, conversation.id, ConversationUpdateBody(display_name="Invoice")
    )
    again = conversations.get_conversation(cfg.app_id, conversation.id).conversation
    assert again is not None
    assert again.display_name == "Invoice"
    with pytest.raises(ApiException) as missing:
        conversations.get_conversation(cfg.app_id, "0123456789abcdef01234567")
    assert missing.value.status == 404
    return conversation.id


def _messages(client: ApiClient, cfg: SunshineSandboxConfig, conversation_id: str) -> None:
    messages = MessagesApi(client)
    contents = [
        Content(TextMessage(type="text", text="Hello from the AI")),
        Content(FileMessage(type="file", media_url="https://x.example.org/faq.pdf")),
        Content(ImageMessage(type="image", media_url="https://x.example.org/a.png")),
    ]
    for content in contents:
        posted = messages.post_message(
            cfg.app_id,
            conversation_id,
            MessagePost(author=Author(type="business", display_name="AI"), content=content),
        )
        assert posted.messages is not None
        assert len(posted.messages) == 1
    user_says = messages.post_message(
        cfg.app_id,
        conversation_id,
        MessagePost(
            author=Author(type="user", user_external_id="crm-1"),
            content=Content(TextMessage(type="text", text="Thanks")),
        ),
    )
    assert user_says.messages is not None
    assert user_says.messages[0].author is not None
    assert user_says.messages[0].author.user_id is not None
    listed = messages.list_messages(cfg.app_id, conversation_id)
    assert listed.messages is not None
    kinds = [m.content.actual_instance.type for m in listed.messages if m.content]  # type: ignore[union-attr]
    assert kinds == ["text", "file", "image", "text"]
    file_content = listed.messages[1].content
    assert file_content is not None
    assert isinstance(file_content.actual_instance, FileMessage)
    assert file_content.actual_instance.media_type == "application/pdf"
    assert listed.meta is not None
    assert listed.meta.has_more is False


def _switchboard(client: ApiClient, cfg: SunshineSandboxConfig, conversation_id: str) -> None:
    boards = SwitchboardsApi(client).list_switchboards(cfg.app_id).switchboards
    assert boards is not None
    assert [b.id for b in boards] == [cfg.switchboard_id]
    integrations = (
        SwitchboardIntegrationsApi(client)
        .list_switchboard_integrations(cfg.app_id, cfg.switchboard_id)
        .switchboard_integrations
    )
    assert integrations is not None
    assert {i.name for i in integrations} == {"ai-agent", "zd-agentWorkspace"}

    actions = SwitchboardActionsApi(client)
    conversations = ConversationsApi(client)

    def active() -> str | None:
        conversation = conversations.get_conversation(cfg.app_id, conversation_id).conversation
        assert conversation is not None
        sbi = conversation.active_switchboard_integration
        return None if sbi is None else sbi.name

    actions.pass_control(
        cfg.app_id,
        conversation_id,
        PassControlBody(switchboard_integration="zd-agentWorkspace", metadata={"a": "b"}),
    )
    assert active() == "zd-agentWorkspace"
    actions.offer_control(
        cfg.app_id, conversation_id, OfferControlBody(switchboard_integration="next")
    )
    actions.accept_control(cfg.app_id, conversation_id, AcceptControlBody())
    assert active() == "ai-agent"
    actions.release_control(cfg.app_id, conversation_id, ReleaseControlBody(reason="ticketClosed"))
    assert active() is None
    with pytest.raises(ApiException) as too_big:
        actions.pass_control(
            cfg.app_id,
            conversation_id,
            PassControlBody(switchboard_integration="next", metadata={"x": "y" * 5000}),
        )
    assert too_big.value.status == 400
    assert too_big.value.body is not None
    assert "bad_request" in too_big.value.body


async def test_official_client_with_basic_auth(hooked: Harness, receiver: WebhookReceiver) -> None:
    def scenario() -> None:
        with _client(hooked) as client:
            conversation_id = _users_and_conversations(client, hooked.config)
            _messages(client, hooked.config, conversation_id)
            _switchboard(client, hooked.config, conversation_id)

    await asyncio.to_thread(scenario)
    await hooked.drain()
    assert receiver.types() == [
        "conversation:create",
        *["conversation:message"] * 4,
        "switchboard:passControl",
        "switchboard:offerControl",
        "switchboard:acceptControl",
        "switchboard:releaseControl",
    ]


async def test_official_client_with_a_jwt(sunshine: Harness) -> None:
    cfg = sunshine.config
    token = jwt.encode(
        {"scope": "app"}, cfg.key_secret, algorithm="HS256", headers={"kid": cfg.key_id}
    )
    forged = jwt.encode(
        {"scope": "app"}, "not-the-secret-" * 3, algorithm="HS256", headers={"kid": cfg.key_id}
    )

    def scenario() -> None:
        with _client(sunshine, token=token) as client:
            created = UsersApi(client).create_user(
                cfg.app_id, UserCreateBody(external_id="jwt-user")
            )
            assert created.user is not None
        with _client(sunshine, token=forged) as client, pytest.raises(ApiException) as refused:
            UsersApi(client).get_user(cfg.app_id, "jwt-user")
        assert refused.value.status == 401

    await asyncio.to_thread(scenario)
