"""Webhook authentication and keying for the generic connector (scheme in the package doc)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from typing import ClassVar

from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.normalize import parse_json
from connectors.base.signatures import check_fresh_unix, require_equal
from schemas.errors import SignatureError, SkippableRecordError

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "GenericIngest", "sign"]

SIGNATURE_HEADER = "x-deskstream-signature"
TIMESTAMP_HEADER = "x-deskstream-timestamp"
DELIVERY_HEADER = "x-deskstream-delivery"
#: ASCII digits only (``int()`` also takes other scripts' digits), and few of them
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,18}")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body signed at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class GenericIngest(IngestConnector):
    platform: ClassVar[str] = "generic"
    # Our own scheme: senders sign each attempt when they send it, so a retry is always fresh.
    default_signature_window: ClassVar[timedelta | None] = timedelta(minutes=5)
    kept_headers: ClassVar[frozenset[str]] = frozenset(
        {"content-type", "user-agent", TIMESTAMP_HEADER, DELIVERY_HEADER}
    )

    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        raw_timestamp = (request.header(TIMESTAMP_HEADER) or "").strip()
        if _UNIX_SECONDS.fullmatch(raw_timestamp) is None:
            raise SignatureError(
                f"missing or non-numeric {TIMESTAMP_HEADER} header (Unix seconds); "
                "nothing was stored. Send the signing time with every delivery"
            )
        timestamp = int(raw_timestamp)
        check_fresh_unix(timestamp, request.received_at, self.signature_window)
        expected = sign(secret, timestamp, request.body)
        require_equal(expected, request.header(SIGNATURE_HEADER), header=SIGNATURE_HEADER)

    def delivery_id(self, request: WebhookRequest) -> str:
        given = request.header(DELIVERY_HEADER)
        return f"generic:{given}" if given else super().delivery_id(request)

    def partition_key(self, request: WebhookRequest) -> str:
        try:
            source = parse_json(request.body)["source"]
            return f"{self.connector_id}:{source['entity_type']}:{source['entity_id']}"
        except (SkippableRecordError, KeyError, TypeError):
            return f"{self.connector_id}:unparsed"
