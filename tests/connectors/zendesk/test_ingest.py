"""Zendesk webhook verification and keying: the published test vector, forged and stale
deliveries, delivery ids, partition keys, and real deliveries from the Zendesk sandbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from connectors.base.ingest import WebhookRequest
from connectors.base.registry import build_ingest_connector
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.ingest import ZendeskIngest, sign
from schemas.errors import ConfigurationError, SignatureError
from tests.sandboxes.zendesk.conftest import SECRET, ZendeskEnv

PUBLISHED_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
VECTOR_TIME = "2021-07-25T10:00:00Z"
VECTOR_BODY = b'{"say": "hello"}'
VECTOR_SIGNATURE = "gf3v0LzLRHPUnIdhbvwRDVEvzSb07/QN0GYjSNlkBT0="
SIGNED_AT = datetime(2021, 7, 25, 10, 0, tzinfo=UTC)


def ingest(secret: str | None = PUBLISHED_SECRET) -> ZendeskIngest:
    return ZendeskIngest(connector_id="zd", secret=SecretStr(secret) if secret else None)


def request(
    body: bytes = VECTOR_BODY,
    *,
    signature: str | None = VECTOR_SIGNATURE,
    timestamp: str | None = VECTOR_TIME,
    received_at: datetime = SIGNED_AT + timedelta(seconds=30),
) -> WebhookRequest:
    headers = {"content-type": "application/json", "user-agent": "Zendesk Webhook"}
    if signature is not None:
        headers["x-zendesk-webhook-signature"] = signature
    if timestamp is not None:
        headers["x-zendesk-webhook-signature-timestamp"] = timestamp
    return WebhookRequest("zd", headers, body, received_at)


def test_published_test_vector_verifies() -> None:
    assert sign(PUBLISHED_SECRET, VECTOR_TIME, VECTOR_BODY) == VECTOR_SIGNATURE
    ingest().verify(request())


@pytest.mark.parametrize(
    ("delivery", "says"),
    [
        pytest.param(request(signature="A" + VECTOR_SIGNATURE[1:]), "does not match", id="forged"),
        pytest.param(request(b'{"say":"hello"}'), "does not match", id="body-changed"),
        pytest.param(
            request(timestamp="2021-07-25T10:00:01Z"), "does not match", id="timestamp-changed"
        ),
        pytest.param(request(signature=None), "missing", id="unsigned"),
        pytest.param(request(timestamp=None), "missing", id="no-timestamp"),
        pytest.param(request(timestamp="1627207200"), "not an ISO-8601", id="unix-timestamp"),
        pytest.param(
            request(received_at=SIGNED_AT + timedelta(hours=24, seconds=1)),
            "beyond the connector's 86400 s window",
            id="older-than-the-window",
        ),
        pytest.param(
            request(received_at=SIGNED_AT - timedelta(minutes=6)),
            "ahead of this worker's clock",
            id="from-the-future",
        ),
    ],
)
def test_refused_deliveries(delivery: WebhookRequest, says: str) -> None:
    with pytest.raises(SignatureError, match=says):
        ingest().verify(delivery)


@pytest.mark.parametrize("late", [timedelta(minutes=6), timedelta(hours=3), timedelta(hours=24)])
def test_a_late_retry_with_its_first_signature_is_accepted(late: timedelta) -> None:
    # No Zendesk page says a retry is signed again when it is sent: it may carry the first
    # attempt's timestamp, and must not be refused for it (issue 9).
    ingest().verify(request(received_at=SIGNED_AT + late))


def test_the_window_is_set_per_connector() -> None:
    narrow = ZendeskIngest(
        connector_id="zd",
        secret=SecretStr(PUBLISHED_SECRET),
        signature_window=timedelta(minutes=10),
    )
    narrow.verify(request(received_at=SIGNED_AT + timedelta(minutes=9)))
    with pytest.raises(SignatureError, match=r"600 s window.*signature_window_seconds"):
        narrow.verify(request(received_at=SIGNED_AT + timedelta(minutes=11)))


def test_other_secret_is_refused_and_missing_secret_is_a_configuration_error() -> None:
    with pytest.raises(SignatureError):
        ingest("another-secret").verify(request())
    with pytest.raises(ConfigurationError, match="SECRET_FILE"):
        ingest(None).verify(request())


EVENT = {
    "type": "zen:event-type:ticket.status_changed",
    "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
    "subject": "zen:ticket:5158",
}


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param(EVENT, "zd:case:5158", id="ticket"),
        pytest.param(
            EVENT | {"subject": "zen:user:381000000007"}, "zd:contact:381000000007", id="user"
        ),
        pytest.param(EVENT | {"subject": "zen:organization:3"}, "zd:organization:3", id="other"),
        pytest.param(EVENT | {"subject": "ticket 5158"}, "zd:unparsed", id="odd-subject"),
        pytest.param(EVENT | {"subject": 5158}, "zd:unparsed", id="number-subject"),
        pytest.param([1, 2], "zd:unparsed", id="array"),
        pytest.param("[[[[", "zd:unparsed", id="not-json"),
    ],
)
def test_partition_key_never_raises(body: object, key: str) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert ingest().partition_key(request(raw)) == key


def test_delivery_id_is_the_event_id_else_a_body_hash() -> None:
    raw = json.dumps(EVENT).encode()
    assert ingest().delivery_id(request(raw)) == f"zendesk:{EVENT['id']}"
    fallback = ingest().delivery_id(request(b'{"say": "hello"}'))
    assert fallback.startswith("sha256:")
    assert fallback == ingest().delivery_id(request(b'{"say": "hello"}'))


def test_kept_headers_leave_the_signature_out() -> None:
    kept = ingest().kept(request())
    assert kept == {
        "content-type": "application/json",
        "user-agent": "Zendesk Webhook",
        "x-zendesk-webhook-signature-timestamp": VECTOR_TIME,
    }


async def test_deliveries_the_sandbox_sent_verify_and_redeliveries_share_an_id(
    zendesk_hooks: ZendeskEnv,
) -> None:
    receiver = zendesk_hooks.receiver
    assert receiver is not None
    receiver.fail_next(1, 503)  # the first attempt is refused: Zendesk sends it again
    await zendesk_hooks.create_ticket(requester={"name": "Ana", "email": "ana@example.com"})
    async with asyncio.timeout(10):
        await zendesk_hooks.drain()
    connector = ingest(SECRET)
    now = zendesk_hooks.clock.now()
    delivered = [
        WebhookRequest("zd", {k.lower(): v for k, v in d.headers.items()}, d.body, now)
        for d in receiver.deliveries
    ]
    for delivery in delivered:
        connector.verify(delivery)
    ids = [connector.delivery_id(d) for d in delivered]
    assert receiver.deliveries[0].status == 503
    (retry,) = [i for i, d in enumerate(delivered) if i and d.body == delivered[0].body]
    assert ids[retry] == ids[0]  # Zendesk's retry keeps the event id
    assert len(set(ids)) == len(delivered) - 1  # and every other event has its own
    keys = {connector.partition_key(d) for d in delivered}
    assert keys == {"zd:contact:381000000003", "zd:case:1"}
    with pytest.raises(SignatureError):
        ingest("not-the-sandbox-secret").verify(delivered[0])


def test_the_connector_settings_set_the_window() -> None:
    settings = ConnectorSettings(
        platform="zendesk", secret=SecretStr(PUBLISHED_SECRET), signature_window_seconds=600
    )
    connector = build_ingest_connector("zd", settings)
    assert connector.signature_window == timedelta(minutes=10)
    with pytest.raises(SignatureError, match="600 s window"):
        connector.verify(request(received_at=SIGNED_AT + timedelta(minutes=11)))
