"""Webhook authentication and keying for Intercom ``notification_event`` deliveries.

``X-Hub-Signature: sha1=<hex>`` is the HMAC-SHA1 of the raw body keyed with the app's client
secret (the connector's secret), compared in constant time.

There is no timestamp window, unlike the generic and Zendesk schemes: Intercom signs no
timestamp (``created_at`` sits inside the body and stays the creation time on every attempt),
and it legitimately redelivers the same notification an hour or more later after failures, so a
freshness check would refuse real deliveries. A replayed body is harmless instead: its
``delivery_id`` is the notification id, the events it yields have deterministic ids, and the
dedupe stage drops them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any, ClassVar, NamedTuple

from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.normalize import parse_json
from connectors.base.signatures import require_equal
from schemas.errors import SkippableRecordError

__all__ = ["SIGNATURE_HEADER", "IntercomIngest", "sign"]

SIGNATURE_HEADER = "x-hub-signature"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Intercom sends for ``body``."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class _Summary(NamedTuple):
    notification_id: str | None
    entity: str | None


def _entity(topic: Any, item: Any) -> str | None:
    """``case:<id>`` or ``contact:<id>`` for the record a notification is about."""
    if topic == "ping":
        return "ping"
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "contact_tag" and isinstance(item.get("contact"), dict):
        item, kind = item["contact"], "contact"
    identifier = item.get("id")
    if identifier is None or isinstance(identifier, dict | list):
        return None
    if kind == "conversation" or (isinstance(topic, str) and topic.startswith("conversation")):
        return f"case:{identifier}"
    if kind in {"contact", "user", "lead"}:
        return f"contact:{identifier}"
    return None


# The view asks for the delivery id and the partition key of the same body one after the
# other; parsing it once keeps ingest at one JSON parse per delivery. Small, because it holds
# bodies (up to the body size limit each); a miss only costs a second parse.
@functools.lru_cache(maxsize=16)
def _summary(body: bytes) -> _Summary:
    try:
        document = parse_json(body)
    except SkippableRecordError:  # unreadable: normalize quarantines it with the reason
        return _Summary(None, None)
    if not isinstance(document, dict):
        return _Summary(None, None)
    notification_id = document.get("id")
    data = document.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    return _Summary(
        notification_id if isinstance(notification_id, str) and notification_id else None,
        _entity(document.get("topic"), item),
    )


class IntercomIngest(IngestConnector):
    platform: ClassVar[str] = "intercom"
    setup_hint: ClassVar[str] = " to the Intercom app's client secret"

    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        received = request.header(SIGNATURE_HEADER)
        expected = sign(secret, request.body)
        # Hex digits are case-insensitive; the comparison itself stays constant-time.
        require_equal(
            expected,
            received.strip().lower() if received is not None else None,
            header="X-Hub-Signature",
        )

    def delivery_id(self, request: WebhookRequest) -> str:
        # Not a hash of the body: Intercom re-renders a retried notification with a new
        # ``delivery_attempts`` (so new bytes), but keeps its id.
        notification_id = _summary(request.body).notification_id
        return f"intercom:{notification_id}" if notification_id else super().delivery_id(request)

    def partition_key(self, request: WebhookRequest) -> str:
        entity = _summary(request.body).entity
        return f"{self.connector_id}:{entity or 'unparsed'}"
