"""Intercom webhook authentication and keying: a known vector, forged deliveries, ids stable
across Intercom's re-rendered retries, and the webhooks the sandbox really sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.base.ingest import WebhookRequest
from connectors.intercom.ingest import SIGNATURE_HEADER, IntercomIngest, sign
from sandboxes.base import LoopbackReceiver, ManualClock, run_sandboxes
from schemas.errors import ConfigurationError, SignatureError
from tests.sandboxes.intercom.conftest import SECRET, IntercomEnv, make_sandbox

RECEIVED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
VECTOR_SECRET = "intercom-client-secret"
VECTOR_BODY = b'{"type":"notification_event","id":"notif_1","topic":"ping"}'
# printf '%s' "$VECTOR_BODY" | openssl dgst -sha1 -hmac 'intercom-client-secret'
VECTOR_SIGNATURE = "sha1=e58fe9117c1e49c088d947fbe9c92f5ffba903d2"


def _ingest(secret: str | None = VECTOR_SECRET) -> IntercomIngest:
    return IntercomIngest(connector_id="ic", secret=SecretStr(secret) if secret else None)


def _request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(connector_id="ic", headers=headers or {}, body=body, received_at=RECEIVED)


def _notification(**overrides: Any) -> dict[str, Any]:
    notification: dict[str, Any] = {
        "type": "notification_event",
        "app_id": "sbx4ntrc",
        "id": "notif_7d1c",
        "topic": "conversation.admin.closed",
        "data": {"type": "notification_event_data", "item": {"type": "conversation", "id": "42"}},
        "delivery_attempts": 1,
        "first_sent_at": 1735689600,
        "created_at": 1735689600,
    }
    notification.update(overrides)
    return notification


def test_sign_matches_an_independently_computed_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE


def test_a_correctly_signed_delivery_verifies() -> None:
    _ingest().verify(_request(VECTOR_BODY, {SIGNATURE_HEADER: VECTOR_SIGNATURE}))
    # Hex case does not matter; surrounding blanks neither.
    _ingest().verify(_request(VECTOR_BODY, {SIGNATURE_HEADER: f" {VECTOR_SIGNATURE.upper()} "}))


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        pytest.param(
            VECTOR_BODY, {SIGNATURE_HEADER: "sha1=" + "0" * 40}, "does not match", id="forged"
        ),
        pytest.param(
            VECTOR_BODY + b" ",
            {SIGNATURE_HEADER: VECTOR_SIGNATURE},
            "does not match",
            id="body-tampered",
        ),
        pytest.param(
            VECTOR_BODY,
            {SIGNATURE_HEADER: VECTOR_SIGNATURE.removeprefix("sha1=")},
            "does not match",
            id="no-algorithm-prefix",
        ),
        pytest.param(
            VECTOR_BODY,
            {SIGNATURE_HEADER: "sha256=" + VECTOR_SIGNATURE.removeprefix("sha1=")},
            "does not match",
            id="wrong-algorithm",
        ),
        pytest.param(VECTOR_BODY, {}, "missing X-Hub-Signature", id="unsigned"),
    ],
)
def test_refused_deliveries_say_why(body: bytes, headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(SignatureError, match=fragment):
        _ingest().verify(_request(body, headers))


def test_another_secret_is_refused() -> None:
    with pytest.raises(SignatureError):
        _ingest("rotated-secret").verify(
            _request(VECTOR_BODY, {SIGNATURE_HEADER: VECTOR_SIGNATURE})
        )


def test_a_connector_without_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_FILE"):
        _ingest(None).verify(_request(VECTOR_BODY, {SIGNATURE_HEADER: VECTOR_SIGNATURE}))


def test_delivery_id_is_the_notification_id_across_re_rendered_retries() -> None:
    first = json.dumps(_notification(delivery_attempts=1)).encode()
    retry = json.dumps(_notification(delivery_attempts=2)).encode()
    assert first != retry
    ingest = _ingest()
    assert ingest.delivery_id(_request(first)) == "intercom:notif_7d1c"
    assert ingest.delivery_id(_request(retry)) == "intercom:notif_7d1c"


def test_delivery_id_falls_back_to_a_body_hash() -> None:
    assert _ingest().delivery_id(_request(b"not json")).startswith("sha256:")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param(_notification(), "ic:case:42", id="conversation"),
        pytest.param(
            _notification(
                topic="contact.user.updated",
                data={"item": {"type": "contact", "id": "6762f2341bb69f9f2193bc17"}},
            ),
            "ic:contact:6762f2341bb69f9f2193bc17",
            id="contact",
        ),
        pytest.param(
            _notification(
                topic="contact.user.tag.created",
                data={
                    "item": {
                        "type": "contact_tag",
                        "contact": {"type": "contact", "id": "c9"},
                        "tag": {"type": "tag", "id": "3"},
                    }
                },
            ),
            "ic:contact:c9",
            id="contact-tag",
        ),
        pytest.param(
            _notification(
                topic="conversation.deleted", data={"item": {"type": "conversation", "id": 7}}
            ),
            "ic:case:7",
            id="deleted-numeric-id",
        ),
        pytest.param(
            _notification(topic="ping", data={"item": {"type": "ping", "message": "hi"}}),
            "ic:ping",
            id="ping",
        ),
        pytest.param(_notification(data=[]), "ic:unparsed", id="data-not-an-object"),
        pytest.param(
            _notification(data={"item": {"type": "conversation", "id": {"x": 1}}}),
            "ic:unparsed",
            id="id-not-a-scalar",
        ),
        pytest.param([1, 2], "ic:unparsed", id="array-body"),
        pytest.param(None, "ic:unparsed", id="not-json"),
    ],
)
def test_partition_key_names_the_record_and_never_raises(body: Any, key: str) -> None:
    raw = b"\xff{" if body is None else json.dumps(body).encode()
    assert _ingest().partition_key(_request(raw)) == key


async def test_webhooks_the_sandbox_sends_verify_and_key(intercom: IntercomEnv) -> None:
    contact = (await intercom.http.post("/contacts", json={"email": "w@example.com"})).json()
    message = (
        await intercom.http.post(
            "/conversations", json={"from": {"type": "user", "id": contact["id"]}, "body": "hi"}
        )
    ).json()
    await intercom.drain()
    ingest = _ingest(SECRET)
    keys = []
    for delivery in intercom.receiver.deliveries:
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        request = _request(delivery.body, headers)
        ingest.verify(request)
        assert ingest.delivery_id(request) == f"intercom:{json.loads(delivery.body)['id']}"
        keys.append(ingest.partition_key(request))
    assert keys == [f"ic:contact:{contact['id']}", f"ic:case:{message['conversation_id']}"]


async def test_a_retried_sandbox_delivery_keeps_its_delivery_id(clock: ManualClock) -> None:
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(clock=clock, webhook_url=receiver.url)
        receiver.fail_next(1, status=500)
        async with run_sandboxes([sandbox]):
            state = sandbox.state
            _, events = state.create_contact({"email": "r@example.com"})
            await sandbox.publish(events)
            assert sandbox.context.webhooks is not None
            await sandbox.context.webhooks.drain()
    first, second = receiver.deliveries
    assert first.body != second.body  # delivery_attempts re-rendered and re-signed
    ingest = _ingest(SECRET)
    ids = set()
    for delivery in (first, second):
        request = _request(delivery.body, {k.lower(): v for k, v in delivery.headers.items()})
        ingest.verify(request)
        ids.add(ingest.delivery_id(request))
    assert len(ids) == 1
