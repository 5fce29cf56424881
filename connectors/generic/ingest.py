"""Webhook authentication and keying for the generic connector (scheme in the package doc)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from app.errors import ConfigurationError, SignatureError
from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.signatures import check_fresh, require_equal

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "GenericIngest", "sign"]

SIGNATURE_HEADER = "x-deskstream-signature"
TIMESTAMP_HEADER = "x-deskstream-timestamp"
DELIVERY_HEADER = "x-deskstream-delivery"
TOLERANCE = timedelta(minutes=5)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body signed at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class GenericIngest(IngestConnector):
    platform: ClassVar[str] = "generic"
    kept_headers: ClassVar[frozenset[str]] = frozenset(
        {"content-type", "user-agent", TIMESTAMP_HEADER, DELIVERY_HEADER}
    )

    def verify(self, request: WebhookRequest) -> None:
        if self._secret is None:
            raise ConfigurationError(
                f"connector {self.connector_id!r} has no secret; set "
                f"DESKSTREAM_CONNECTORS__{self.connector_id}__SECRET_FILE (or __SECRET)"
            )
        raw_timestamp = request.header(TIMESTAMP_HEADER)
        try:
            timestamp = int(raw_timestamp or "")
        except ValueError:
            raise SignatureError(
                f"missing or non-numeric {TIMESTAMP_HEADER} header (Unix seconds); "
                "nothing was stored"
            ) from None
        check_fresh(datetime.fromtimestamp(timestamp, UTC), request.received_at, TOLERANCE)
        expected = sign(self._secret.get_secret_value(), timestamp, request.body)
        require_equal(expected, request.header(SIGNATURE_HEADER), header=SIGNATURE_HEADER)

    def delivery_id(self, request: WebhookRequest) -> str:
        given = request.header(DELIVERY_HEADER)
        return f"generic:{given}" if given else super().delivery_id(request)

    def partition_key(self, request: WebhookRequest) -> str:
        try:
            source = json.loads(request.body)["source"]
            return f"{self.connector_id}:{source['entity_type']}:{source['entity_id']}"
        except (ValueError, KeyError, TypeError):
            return f"{self.connector_id}:unparsed"
