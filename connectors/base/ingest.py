"""The webhook side of a connector: authenticate a delivery and say how to key it.

The worker's ``POST /webhooks/{connector_id}`` view owns HTTP (size limit, status codes, the
write to Kafka); a connector owns only what differs per platform:

- ``verify``: the platform's signature check. Raise ``SignatureError`` and nothing is stored.
- ``delivery_id``: a deterministic id for this delivery, the same when the platform redelivers
  it, so everything downstream (event ids, dedupe) is idempotent.
- ``partition_key``: the source entity the delivery is about, so all deliveries for one
  ticket or conversation land in one partition, in order. Best effort: it must never raise,
  because an authenticated delivery is stored even when its body is unreadable (normalize
  quarantines it later with the reason).
- ``kept_headers``: the headers worth keeping in the raw record (never credentials).
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import SecretStr

__all__ = ["IngestConnector", "WebhookRequest"]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One delivery as it arrived. ``headers`` keys are lower-case."""

    connector_id: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class IngestConnector(abc.ABC):
    """Per-platform webhook authentication and keying. Subclasses are small and pure."""

    platform: ClassVar[str]
    kept_headers: ClassVar[frozenset[str]] = frozenset({"content-type", "user-agent"})

    def __init__(self, *, connector_id: str, secret: SecretStr | None) -> None:
        self.connector_id = connector_id
        self._secret = secret

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise ``SignatureError`` unless the delivery is authentic and fresh."""

    def delivery_id(self, request: WebhookRequest) -> str:
        """The platform's delivery id when it sends one; else a hash of the body."""
        return "sha256:" + hashlib.sha256(request.body).hexdigest()

    @abc.abstractmethod
    def partition_key(self, request: WebhookRequest) -> str:
        """The source entity the delivery is about; never raises."""

    def kept(self, request: WebhookRequest) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k in self.kept_headers}
