"""Authentication and keying of ``POST /handoff`` bodies (the scheme in the package doc).

A key is a bearer secret, not a signature: the API client is our own AI side, over TLS, and
the answer must come fast. Each of the client's keys is compared in constant time; which one
matched, and the keys themselves, never reach a log or an error.
"""

from __future__ import annotations

import hmac
from typing import ClassVar

from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.normalize import parse_json
from schemas.errors import SignatureError, SkippableRecordError

__all__ = ["CLIENT_HEADER", "AiAgentIngest", "conversation_id_of"]

CLIENT_HEADER = "x-deskstream-client"
_BEARER = "bearer "


def conversation_id_of(body: bytes) -> str | None:
    """The client's conversation id, when the body has one (it is the idempotency key)."""
    try:
        found = parse_json(body).get("conversation_id")
    except (SkippableRecordError, AttributeError):
        return None
    return found if isinstance(found, str) and found else None


class AiAgentIngest(IngestConnector):
    platform: ClassVar[str] = "ai_agent"
    kept_headers: ClassVar[frozenset[str]] = frozenset(
        {"content-type", "user-agent", CLIENT_HEADER}
    )
    setup_hint: ClassVar[str] = " (one key per line; give the same key to the AI client)"

    def check_signature(self, request: WebhookRequest, secret: str) -> None:
        given = request.header("authorization") or ""
        if not given.lower().startswith(_BEARER):
            raise SignatureError(
                "missing 'Authorization: Bearer <key>' header; nothing was stored. Send the "
                "client's key with every request"
            )
        key = given[len(_BEARER) :].strip()
        # compare_digest refuses non-ASCII str; bytes compare in constant time whatever the text
        if not hmac.compare_digest(secret.encode(), key.encode()):
            raise SignatureError(
                f"the key is not one of client {self.connector_id!r}'s keys; nothing was "
                "stored. Use a current key (during a rotation both the new and the old key "
                "are accepted)"
            )

    def delivery_id(self, request: WebhookRequest) -> str:
        conversation = conversation_id_of(request.body)
        return f"handoff:{conversation}" if conversation else super().delivery_id(request)

    def partition_key(self, request: WebhookRequest) -> str:
        # One conversation's hand-offs meet in one partition, so normalize's dedupe sees them.
        return f"{self.connector_id}:handoff:{conversation_id_of(request.body) or 'unparsed'}"
