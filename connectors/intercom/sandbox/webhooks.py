"""Intercom webhook notifications: the ``notification_event`` envelope and its signature.

``X-Hub-Signature: sha1=<hex>`` is the HMAC-SHA1 of the raw body keyed with the app's client
secret. Retries re-render the envelope with the new ``delivery_attempts`` and sign it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

from connectors.base.sandbox.webhooks import RetryPolicy

__all__ = [
    "INTERCOM_RETRY_POLICY",
    "PING_ITEM",
    "NotificationFactory",
    "sign",
    "verify",
]

#: Intercom treats no 2xx within 5 s as a failure and retries; the reference leaves the exact
#: schedule UNVERIFIED, so this is one retry after a minute for any failure.
INTERCOM_RETRY_POLICY = RetryPolicy(
    max_attempts=2,
    retry_statuses=None,
    backoff_initial_s=60.0,
    backoff_factor=1.0,
    backoff_max_s=60.0,
    timeout_s=5.0,
)

#: The ``data.item`` of the ``ping`` topic sent when a subscription is saved.
PING_ITEM: dict[str, Any] = {"type": "ping", "message": "something something interzen"}


def sign(body: bytes, client_secret: str) -> str:
    """The ``X-Hub-Signature`` header value for ``body``."""
    digest = hmac.new(client_secret.encode(), body, hashlib.sha1).hexdigest()
    return f"sha1={digest}"


def verify(body: bytes, header: str | None, client_secret: str) -> bool:
    """Whether ``header`` is a valid signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(body, client_secret), header)


class NotificationFactory:
    """Builds signed notifications for one app."""

    def __init__(self, *, app_id: str, client_secret: str, rng: random.Random) -> None:
        self.app_id = app_id
        self.client_secret = client_secret
        self._rng = rng

    def envelope(self, topic: str, item: Mapping[str, Any], *, created_at: int) -> dict[str, Any]:
        notification_id = f"notif_{uuid.UUID(int=self._rng.getrandbits(128), version=4)}"
        return {
            "type": "notification_event",
            "app_id": self.app_id,
            "data": {"type": "notification_event_data", "item": dict(item)},
            "links": {},
            "id": notification_id,
            "topic": topic,
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": created_at,
            "created_at": created_at,
            "self": None,
        }

    def render(self, envelope: Mapping[str, Any], attempt: int) -> tuple[bytes, dict[str, str]]:
        """Body and headers of delivery attempt ``attempt`` of ``envelope``."""
        body = json.dumps({**envelope, "delivery_attempts": attempt}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, self.client_secret),
        }
        return body, headers
