"""How the records look on the wire, in API responses and in webhook payloads.

Shapes follow the spec's ``components/schemas``: ``user`` and ``userTruncated`` (webhooks
without ``includeFullUser``), ``conversation`` and ``conversationTruncated``, ``message`` and
``messageWebhook`` (which adds ``author.user``), ``switchboard`` and
``switchboardIntegration``; responses wrap them as the operations' ``201``/``200`` bodies do
(``{"user": ...}``, ``{"messages": [...]}``). They are contract-tested against the spec
(``tests/sandboxes/zendesk_conversations/test_contract.py``). Optional fields are omitted
rather than sent as null (an ``activeSwitchboardIntegration`` is absent, not null, once
control has been released): the spec marks none of them ``nullable`` (the harsher reading for
a receiver that must cope with absence).
"""

from __future__ import annotations

from typing import Any

from sandboxes.zendesk_conversations.model import (
    Conversation,
    Message,
    Switchboard,
    SwitchboardIntegration,
    User,
)

__all__ = [
    "conversation_json",
    "conversation_truncated",
    "message_json",
    "message_webhook",
    "switchboard_integration_json",
    "switchboard_json",
    "user_json",
    "user_truncated",
]


def user_json(user: User) -> dict[str, Any]:
    body: dict[str, Any] = {"id": user.id}
    if user.external_id is not None:
        body["externalId"] = user.external_id
    body["signedUpAt"] = user.signed_up_at
    if user.to_be_retained is not None:
        body["toBeRetained"] = user.to_be_retained
    body["hasPaymentInfo"] = False
    body["identities"] = []
    body["profile"] = dict(user.profile)
    body["metadata"] = dict(user.metadata)
    return body


def user_truncated(user: User) -> dict[str, Any]:
    """The user as webhooks carry it without ``includeFullUser``."""
    body: dict[str, Any] = {"id": user.id}
    if user.external_id is not None:
        body["externalId"] = user.external_id
    body["authenticated"] = False
    return body


def switchboard_integration_json(sbi: SwitchboardIntegration) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": sbi.id,
        "name": sbi.name,
        "integrationId": sbi.integration_id,
        "integrationType": sbi.integration_type,
        "deliverStandbyEvents": sbi.deliver_standby_events,
    }
    if sbi.next_id is not None:
        body["nextSwitchboardIntegrationId"] = sbi.next_id
    if sbi.message_history_count is not None:
        body["messageHistoryCount"] = sbi.message_history_count
    return body


def _sbi_webhook(sbi: SwitchboardIntegration) -> dict[str, Any]:
    return {
        "id": sbi.id,
        "name": sbi.name,
        "integrationId": sbi.integration_id,
        "integrationType": sbi.integration_type,
    }


def switchboard_json(switchboard: Switchboard) -> dict[str, Any]:
    body: dict[str, Any] = {"id": switchboard.id, "enabled": switchboard.enabled}
    if switchboard.default_id is not None:
        body["defaultSwitchboardIntegrationId"] = switchboard.default_id
    return body


def conversation_truncated(
    conversation: Conversation, switchboard: Switchboard, *, metadata: bool = True
) -> dict[str, Any]:
    """``conversationTruncated``: id, type, metadata and the switchboard state."""
    body: dict[str, Any] = {"id": conversation.id, "type": conversation.type}
    if metadata and conversation.metadata:
        body["metadata"] = dict(conversation.metadata)
    active = switchboard.find(conversation.active_id)
    if active is not None:
        body["activeSwitchboardIntegration"] = _sbi_webhook(active)
    pending = switchboard.find(conversation.pending_id)
    if pending is not None:
        body["pendingSwitchboardIntegration"] = _sbi_webhook(pending)
    return body


def conversation_json(conversation: Conversation, switchboard: Switchboard) -> dict[str, Any]:
    body = conversation_truncated(conversation, switchboard)
    body["isDefault"] = conversation.is_default
    if conversation.display_name is not None:
        body["displayName"] = conversation.display_name
    if conversation.description is not None:
        body["description"] = conversation.description
    if conversation.icon_url is not None:
        body["iconUrl"] = conversation.icon_url
    body["businessLastRead"] = None
    body["lastUpdatedAt"] = conversation.last_updated_at
    body["createdAt"] = conversation.created_at
    return body


def message_json(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.id,
        "received": message.received,
        "author": dict(message.author),
        "content": dict(message.content),
        "source": dict(message.source),
    }
    if message.metadata:
        body["metadata"] = dict(message.metadata)
    return body


def message_webhook(message: Message, author_user: User | None) -> dict[str, Any]:
    """``messageWebhook``: as in the API, plus the authoring user for user messages."""
    body = message_json(message)
    if author_user is not None:
        body["author"]["user"] = user_truncated(author_user)
    return body
