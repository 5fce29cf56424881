"""Who may use the live chat endpoints: the AI clients, with the keys they use for
``POST /handoff``.

An AI client is a connector of platform ``ai_agent`` (``DESKSTREAM_CONNECTORS__<client>__*``:
its keys in ``SECRET_FILE``, one per line, every line accepted, re-read when the file changes,
which is how a key is rotated). A request names its client in ``X-Deskstream-Client`` and
presents a key as ``Authorization: Bearer <key>``; the check is the hand-off's own
(``connectors.ai_agent.ingest``: constant-time, no key in any message). One identity and one
set of keys per AI client, whichever endpoint it calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from connectors.ai_agent.ingest import CLIENT_HEADER
from connectors.base.ingest import WebhookRequest
from connectors.base.registry import build_ingest_connector
from connectors.base.settings import ConnectorSettings
from schemas.errors import SignatureError

__all__ = ["CLIENT_HEADER", "ChatSettings", "client_of"]


class ChatSettings(BaseModel):
    """``DESKSTREAM_CHAT__*``: the live chat bridge's client-facing side."""

    #: AI client id → the live chat connector its hand-offs go to; a client not listed goes
    #: to the only live chat connector (several need this table)
    workspaces: dict[str, str] = Field(default_factory=dict)
    #: a stream opened without ``Last-Event-ID`` starts this far back in the chat topic
    stream_lookback_seconds: int = Field(default=24 * 3600, ge=1, le=7 * 24 * 3600)


def client_of(
    connectors: Mapping[str, ConnectorSettings], headers: Mapping[str, str]
) -> str | None:
    """The AI client the request authenticates as, or None (unknown client, wrong key: the
    same answer, so client ids cannot be probed). ``ConfigurationError`` when the client has
    no key configured."""
    lowered = {k.lower(): v for k, v in headers.items()}
    client = lowered.get(CLIENT_HEADER, "").strip()
    config = connectors.get(client) if client else None
    if config is None or config.platform != "ai_agent":
        return None
    request = WebhookRequest(client, lowered, b"", datetime.now(UTC))
    try:
        build_ingest_connector(client, config).verify(request, config.signing_secrets())
    except SignatureError:
        return None
    return client
