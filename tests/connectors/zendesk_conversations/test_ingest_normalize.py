"""X-API-Key ingest and the normaliser, on webhooks the Sunshine sandbox really sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from connectors.base.ingest import WebhookRequest
from connectors.base.registry import build_ingest_connector, build_normaliser
from connectors.base.settings import ConnectorSettings
from schemas.errors import ConfigurationError, SignatureError, SkippableRecordError
from schemas.models import ActorKind, Case, CaseStatus, Message, Platform, RawDelivery
from tests.sandboxes.zendesk_conversations.harness import (
    Harness,
    Received,
    WebhookReceiver,
    serve_sandbox,
)

RECEIVED = datetime(2025, 3, 1, 9, 0, 5, tzinfo=UTC)


def _settings(harness: Harness, *secrets: str) -> ConnectorSettings:
    cfg = harness.config
    return ConnectorSettings(
        platform="zendesk_conversations",
        secret=SecretStr(secrets[0]) if secrets else None,
        previous_secret=SecretStr(secrets[1]) if len(secrets) > 1 else None,
        service_account_id=cfg.integration_id,
        **{"app_id": cfg.app_id},  # the platform's own setting
    )


def _request(received: Received) -> WebhookRequest:
    headers = {k.lower(): v for k, v in received.headers.items()}
    return WebhookRequest("chat", headers, received.body, RECEIVED)


def _delivery(received: Received) -> RawDelivery:
    return RawDelivery(
        delivery_id="d1",
        connector_id="chat",
        platform=Platform.ZENDESK_CONVERSATIONS,
        received_at=RECEIVED,
        body=received.body,
        signature_verified=True,
    )


@pytest.fixture
async def chat(receiver: WebhookReceiver) -> AsyncIterator[tuple[Harness, str]]:
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        user = await harness.create_user("crm-7", profile={"givenName": "Ada"})
        conversation = await harness.create_conversation(user, metadata={"chat": "c-1"})
        await harness.api.post(
            f"/conversations/{conversation}/passControl",
            json={"switchboardIntegration": "zd-agentWorkspace", "metadata": {"reason": "x"}},
        )
        await harness.admin.post(
            f"/_sandbox/agent/conversations/{conversation}/reply",
            json={"text": "Hello, I am Sam", "agentId": "42", "agentName": "Sam"},
        )
        await harness.admin.post(
            f"/_sandbox/agent/conversations/{conversation}/reply",
            json={"type": "image", "mediaUrl": "https://files.example/refund%20form.png"},
        )
        await harness.admin.post(
            f"/_sandbox/enduser/conversations/{conversation}/messages", json={"text": "thanks"}
        )
        await harness.admin.post(f"/_sandbox/agent/conversations/{conversation}/release")
        await harness.drain()
        yield harness, conversation


async def test_the_webhook_api_key_is_checked_against_every_accepted_secret(
    receiver: WebhookReceiver, chat: tuple[Harness, str]
) -> None:
    harness, _ = chat
    request = _request(receiver.received[0])
    # The current secret, and the old one during a rotation, both accept the delivery.
    build_ingest_connector("chat", _settings(harness, harness.config.webhook_secret)).verify(
        request
    )
    rotated = _settings(harness, "the-new-secret", harness.config.webhook_secret)
    build_ingest_connector("chat", rotated).verify(request, rotated.signing_secrets())
    # Another integration's secret (another workspace) refuses it: forged here.
    other = _settings(harness, "another-workspace-secret")
    with pytest.raises(SignatureError, match="X-API-Key does not match"):
        build_ingest_connector("chat", other).verify(request)
    unsigned = WebhookRequest("chat", {}, request.body, RECEIVED)
    with pytest.raises(SignatureError, match="missing X-API-Key"):
        build_ingest_connector("chat", _settings(harness, "s")).verify(unsigned)
    with pytest.raises(ConfigurationError, match="SECRET_FILE"):
        build_ingest_connector("chat", _settings(harness)).verify(request)


async def test_deliveries_are_keyed_by_their_conversation(
    receiver: WebhookReceiver, chat: tuple[Harness, str]
) -> None:
    harness, conversation = chat
    ingest = build_ingest_connector("chat", _settings(harness, "s"))
    keys = {ingest.partition_key(_request(r)) for r in receiver.received}
    assert keys == {f"chat:case:{conversation}"}
    garbage = WebhookRequest("chat", {}, b"{not json", RECEIVED)
    assert ingest.partition_key(garbage) == "chat:case:unparsed"


async def test_messages_and_the_release_become_events_of_the_conversation_in_order(
    receiver: WebhookReceiver, chat: tuple[Harness, str]
) -> None:
    harness, conversation = chat
    normaliser = build_normaliser("chat", _settings(harness, "s"))
    events = [e for r in receiver.received for e in normaliser.normalise(_delivery(r))]
    assert [e.source.event_type for e in events] == [
        "switchboard:passControl",
        "conversation:message",
        "conversation:message",
        "conversation:message",
        "switchboard:releaseControl",
    ]
    assert {e.source.entity_id for e in events} == {conversation}
    assert all(e.link_id is None for e in events)
    handed, text, image, user, released = events
    assert isinstance(handed.data, Case)
    assert handed.data.custom_fields == {"active_integration": "zd-agentWorkspace"}
    assert isinstance(text.data, Message)
    assert isinstance(image.data, Message)
    assert text.data.author.kind is ActorKind.AGENT
    assert (text.data.author.id, text.data.author.name) == ("42", "Sam")
    assert text.data.body_text == "Hello, I am Sam"
    [attachment] = image.data.attachments
    assert attachment.name == "refund form.png"
    assert attachment.source_url == "https://files.example/refund%20form.png"
    assert attachment.content_type == "image/png"  # the mediaType the platform sets
    assert isinstance(user.data, Message)
    assert user.data.author.kind is ActorKind.CUSTOMER
    assert isinstance(released.data, Case)
    assert released.data.status is CaseStatus.SOLVED
    assert released.data.custom_fields == {"release_reason": "ticketClosed"}
    # The same payload again (a retry) gives the very same event ids.
    again = [e for r in receiver.received for e in normaliser.normalise(_delivery(r))]
    assert [e.event_id for e in again] == [e.event_id for e in events]


async def test_our_own_messages_are_recognised_as_echoes(receiver: WebhookReceiver) -> None:
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        user = await harness.create_user("crm-8")
        conversation = await harness.create_conversation(user)
        body = {
            "author": {"type": "business"},
            "content": {"type": "text", "text": "Summary for the agent"},
            "metadata": {"deskstream_event_id": "e-1"},
        }
        await harness.api.post(f"/conversations/{conversation}/messages", json=body)
        await harness.post_text(conversation, "Another bot speaking")
        await harness.drain()
    normaliser = build_normaliser("chat", _settings(harness, "s"))
    events = [e for r in receiver.received for e in normaliser.normalise(_delivery(r))]
    kinds = [e.data.author.kind for e in events if isinstance(e.data, Message)]
    assert kinds == [ActorKind.INTEGRATION, ActorKind.AI]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[1]", "not a JSON object"),
        (b'{"app":{"id":"a"},"webhook":{"id":"w","version":"v2"},"events":[]}', "non-empty"),
        (
            b'{"app":{"id":"a"},"webhook":{"id":"w","version":"v2"},"events":[{"id":"e",'
            b'"type":"conversation:message","createdAt":"2025-03-01T09:00:00.000Z",'
            b'"payload":{"conversation":{"id":"c"},"message":{}}}]}',
            "no message.id",
        ),
    ],
)
def test_authenticated_but_malformed_payloads_are_quarantined_with_the_reason(
    body: bytes, reason: str
) -> None:
    settings = ConnectorSettings(
        platform="zendesk_conversations",
        **{"app_id": "a"},
    )
    delivery = _delivery(Received({}, body))
    with pytest.raises(SkippableRecordError, match=reason):
        build_normaliser("chat", settings).normalise(delivery)
