"""Webhook authentication and keying for Zendesk event-subscription webhooks.

Zendesk signs every delivery: ``X-Zendesk-Webhook-Signature`` is
``base64(HMAC-SHA256(key=secret_utf8, msg=TIMESTAMP + RAW_BODY))`` with
``X-Zendesk-Webhook-Signature-Timestamp`` an ISO-8601 UTC time (``2021-07-25T10:00:00Z``).
The secret is used as it is (it looks like base64 but is not decoded).

Freshness: no official page says whether Zendesk signs a retry again at its own send time, so a
retry may carry its first attempt's timestamp. The window is therefore wide (24 h, per
connector ``signature_window_seconds``) and only bounds how long a captured delivery stays
usable; replays inside it are harmless, because the event id is deduplicated and the
source-time clock refuses an older value over a newer one (``docs/architecture.md``,
"Webhook freshness").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.normalize import parse_json
from connectors.base.signatures import check_fresh, require_equal
from schemas.errors import SignatureError, SkippableRecordError

__all__ = ["SIGNATURE_HEADER", "SIGNATURE_WINDOW", "TIMESTAMP_HEADER", "ZendeskIngest", "sign"]

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
#: No Zendesk page says whether a retry is signed again at its own send time, so a retry may
#: carry its first attempt's timestamp: the window must outlast the whole retry schedule.
SIGNATURE_WINDOW = timedelta(hours=24)

#: The subject's record type → the canonical entity the raw record is keyed by.
_ENTITY_OF_DOMAIN = {"ticket": "case", "user": "contact"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's signature over ``timestamp + body`` (for tests and tools)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def _envelope(body: bytes) -> dict[str, Any] | None:
    try:
        document = parse_json(body)
    except SkippableRecordError:  # unreadable: normalize quarantines it with the reason
        return None
    return document if isinstance(document, dict) else None


class ZendeskIngest(IngestConnector):
    platform: ClassVar[str] = "zendesk"
    # Zendesk's own ids for the account, webhook and invocation help an operator trace a
    # delivery in Zendesk's webhook activity log; the signature itself is not worth keeping.
    kept_headers: ClassVar[frozenset[str]] = frozenset(
        {
            "content-type",
            "user-agent",
            TIMESTAMP_HEADER,
            "x-zendesk-account-id",
            "x-zendesk-webhook-id",
            "x-zendesk-webhook-invocation-id",
        }
    )

    setup_hint: ClassVar[str] = (
        " from Zendesk (Admin Center > Webhooks > the webhook > Signing secret)"
    )
    default_signature_window: ClassVar[timedelta | None] = SIGNATURE_WINDOW

    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        timestamp = request.header(TIMESTAMP_HEADER)
        if not timestamp:
            raise SignatureError(
                f"missing {TIMESTAMP_HEADER} header: not a signed Zendesk webhook; nothing was "
                "stored"
            )
        try:
            signed_at = datetime.fromisoformat(timestamp.strip())
        except (ValueError, OverflowError):
            raise SignatureError(
                f"{TIMESTAMP_HEADER} is not an ISO-8601 time; nothing was stored"
            ) from None
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=UTC)
        check_fresh(signed_at, request.received_at, self.signature_window)
        # The header's exact text is what Zendesk signed; never a re-formatted time.
        expected = sign(secret, timestamp, request.body)
        require_equal(expected, request.header(SIGNATURE_HEADER), header=SIGNATURE_HEADER)

    def delivery_id(self, request: WebhookRequest) -> str:
        """The event's own ``id``: Zendesk repeats it on every retry of the delivery."""
        envelope = _envelope(request.body)
        event_id = envelope.get("id") if envelope else None
        if isinstance(event_id, str) and event_id.strip():
            return f"zendesk:{event_id.strip()}"
        return super().delivery_id(request)

    def partition_key(self, request: WebhookRequest) -> str:
        """``zen:ticket:5158`` → ``<connector>:case:5158``; ``zen:user:9`` → ``...:contact:9``.
        Comments are keyed by their ticket, so a ticket's events stay in order."""
        envelope = _envelope(request.body)
        subject = envelope.get("subject") if envelope else None
        if isinstance(subject, str):
            prefix, _, rest = subject.partition(":")
            domain, _, record_id = rest.partition(":")
            if prefix == "zen" and domain and record_id:
                entity = _ENTITY_OF_DOMAIN.get(domain, domain)
                return f"{self.connector_id}:{entity}:{record_id}"
        return f"{self.connector_id}:unparsed"
