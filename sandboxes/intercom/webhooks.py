"""Intercom webhook notifications: the ``notification_event`` envelope and its signature.

``X-Hub-Signature: sha1=<hex>`` is the HMAC-SHA1 of the raw body keyed with the app's client
secret. Retries re-render the envelope with the new ``delivery_attempts`` and sign it again:
"Notification Model" (https://intercom-developer-hub.readme.io/reference/notification-model)
documents ``delivery_attempts`` as "the number of times this notification has been attempted"
and ``first_sent_at`` as the first time delivery was attempted, so a retry's body, and with it
its signature, differs from the first attempt's. The signature covers no timestamp, so a late
retry is no staler than the first attempt; receivers dedupe on the notification ``id``.

Delivery limits (:data:`INTERCOM_DELIVERY_LIMITS`), from "Delivering Webhook Notifications"
(https://developers.intercom.com/docs/webhooks/webhook-notifications, also served as
https://developers.intercom.com/intercom-api-reference/reference/webhook-notifications under
"Why are my Webhook topic notifications missing?"):

* more than 1000 consecutive HTTP error codes in a 15-minute window pause the topic
  notifications for 15 minutes, "after which we start sending as normal again"; the page
  lists paused notifications as missing, so the sandbox drops what falls due meanwhile;
* HTTP error codes for more than seven days suspend the subscription: no further
  notifications until someone presses "Set live" in the Developer Hub
  (``POST /_sandbox/webhooks/resume`` here). Only private apps are suspended, never public
  ones; the sandbox plays a private app (``suspend_after_s=None`` would play a public one).

The retry schedule (one retry after a minute) and the 5 s answer timeout are UNVERIFIED:
queries tried, "Intercom webhook retry once after one minute", "Intercom webhook
notifications retry failed notification once after one minute 5 seconds timeout", "Intercom
setting up webhooks your endpoint must respond within 5 seconds retry failed notification",
found no official page that states them. Counting a timeout or refused connection as an
"HTTP error code" is the sandbox's reading. The page's 429 throttling (delays from 1 minute
to 2 hours) is not modelled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

from sandboxes.base.governor import DeliveryLimits
from sandboxes.base.webhooks import RetryPolicy

__all__ = [
    "INTERCOM_DELIVERY_LIMITS",
    "INTERCOM_RETRY_POLICY",
    "PING_ITEM",
    "NotificationFactory",
    "sign",
    "verify",
]

#: Pause after more than 1000 consecutive errors within 15 minutes, for 15 minutes; suspend
#: after more than 7 days of errors (a private app's subscription). Module docstring: sources.
INTERCOM_DELIVERY_LIMITS = DeliveryLimits(
    open_state="paused",
    window_s=15 * 60.0,
    max_consecutive_errors=1000,
    open_s=15 * 60.0,
    suspend_after_s=7 * 24 * 3600.0,
)

#: Intercom treats no 2xx within 5 s as a failure and retries; the schedule is UNVERIFIED
#: (module docstring), so this is one retry after a minute for any failure.
INTERCOM_RETRY_POLICY = RetryPolicy(
    max_attempts=2,
    retry_statuses=None,
    backoff_initial_s=60.0,
    backoff_factor=1.0,
    backoff_max_s=60.0,
    timeout_s=5.0,
    limits=INTERCOM_DELIVERY_LIMITS,
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
