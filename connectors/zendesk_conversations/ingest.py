"""Webhook authentication and keying for Sunshine Conversations v2 webhooks.

Sunshine signs nothing: the webhook's shared secret travels as is in the ``X-API-Key`` header
(spec tag ``Webhooks``, "Securing Sunshine Conversations Webhooks"). It is compared in constant
time against every secret the connector accepts now, so an operator rotating it (a new
webhook secret on the integration, the old one kept on the second line of ``SECRET_FILE``
during the switch) loses no delivery. One connector is one integration (one workspace): each
has its own secret and its own URL, ``/webhooks/<connector id>``.

There is no timestamp to bound a replay: a captured payload sent again yields the very same
event ids (each event's ``id``, which the spec says receivers deduplicate on) and normalize
drops them. A retry re-sends the same payload byte for byte (spec "Retry policy"), so the
body hash is a stable delivery id.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.normalize import parse_json
from connectors.base.signatures import require_equal
from schemas.errors import SkippableRecordError

__all__ = ["API_KEY_HEADER", "SunshineIngest"]

API_KEY_HEADER = "x-api-key"


@functools.lru_cache(maxsize=16)
def _conversation(body: bytes) -> str | None:
    """The conversation of the payload's first event, best effort (never raises)."""
    try:
        document = parse_json(body)
    except SkippableRecordError:
        return None
    events = document.get("events") if isinstance(document, dict) else None
    first = events[0] if isinstance(events, list) and events else None
    payload = first.get("payload") if isinstance(first, dict) else None
    conversation = payload.get("conversation") if isinstance(payload, dict) else None
    identifier = conversation.get("id") if isinstance(conversation, dict) else None
    return identifier if isinstance(identifier, str) and identifier else None


class SunshineIngest(IngestConnector):
    platform: ClassVar[str] = "zendesk_conversations"
    setup_hint: ClassVar[str] = " to the secret of the integration's webhook (X-API-Key)"

    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        require_equal(secret, request.header(API_KEY_HEADER), header="X-API-Key")

    def partition_key(self, request: WebhookRequest) -> str:
        # Every event about one conversation in one partition, in the order the platform sent.
        conversation = _conversation(request.body)
        return f"{self.connector_id}:case:{conversation or 'unparsed'}"
