"""Event-subscription webhooks: the envelope Zendesk sends and the way it signs it.

Each change becomes one POST. The envelope follows the reference: string ids, upper-case
ticket enums, ``time`` with nanoseconds, a ``detail`` snapshot of the record after the change,
and an ``event`` whose ``meta.sequence`` groups the events one API call caused. The signature
is ``base64(HMAC-SHA256(secret, timestamp + body))`` with the secret's UTF-8 bytes as the key.

Event payload shapes the public docs leave open (``created`` and ``soft_deleted`` bodies,
``user.identity_created``) are marked UNVERIFIED where they are built.

Delivery (:data:`ZENDESK_RETRY_POLICY`, :data:`ZENDESK_DELIVERY_LIMITS`), checked against:

* "Webhooks API introduction", https://developer.zendesk.com/api-reference/webhooks/introduction
  (section "Webhook retries"): webhooks retry failed requests that return certain HTTP
  response codes, and a circuit breaker stops requests to failing endpoints. The stored copy
  of the page breaks off there, so the statuses retried (409, 429, 503, timeouts) and the
  10 s timeout stay UNVERIFIED (from ``shared/reference/platform-apis.md``).
* "Managing webhooks" (Zendesk help center, article 4408836101146;
  https://support.zendesk.com/hc/ja/articles/4408836101146 was the copy found): an invocation
  is retried automatically at most 3 times when the endpoint returns certain HTTP response
  codes, hence 4 attempts. The backoff between them is UNVERIFIED.
* The breaker's thresholds, 70 % of a webhook's requests failing within 5 minutes or more than
  1,000 errors within 5 minutes, appear on no official page the search returned; they come
  from the reference notes and a third-party summary ("Master Webhooks to Maximize Stability
  and Performance in 4 Steps", https://alboz.eu/insights/master-webhooks-maximize-stability-performance:
  it "will trip and briefly stop sending requests"). How long it stays open, that it then
  sends one test request, the minimum volume before the 70 % share counts, and that requests
  due while open are dropped rather than queued are UNVERIFIED: no page found says. No page
  found documents a webhook being deactivated for failing long, so the sandbox does not
  deactivate one (an admin can still reset the breaker: ``POST /_sandbox/webhooks/resume``).

Retries are not re-signed. Queries tried for a statement that a retry carries a fresh
``X-Zendesk-Webhook-Signature-Timestamp``: "Zendesk webhook signature timestamp retry same
signature X-Zendesk-Webhook-Signature-Timestamp replay", "Zendesk verifying webhook
authenticity signing secret timestamp prevent replay attacks", "Zendesk webhook retries 409
429 503 timeout", "Zendesk webhook retry-after header less than 60 seconds retried 429 503".
"Verifying webhook authenticity" (https://developer.zendesk.com/documentation/webhooks/verifying/)
says how the signature is computed and that it helps against replay attacks, not when the
timestamp is taken; no page says retries are signed again. So the sandbox takes the
conservative reading: every attempt of an invocation, and any redelivery, re-sends the original
bytes, timestamp and signature, and a receiver must accept a legitimate retry whose signature
is as old as the retry schedule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandboxes.base.clock import Clock
from sandboxes.base.governor import DeliveryLimits
from sandboxes.base.webhooks import RetryPolicy, WebhookDispatcher
from sandboxes.zendesk.config import ZendeskSandboxConfig
from sandboxes.zendesk.state import Ticket, User

__all__ = [
    "SIGNATURE_HEADER",
    "TICKET_EVENT_VERSION",
    "TIMESTAMP_HEADER",
    "USER_EVENT_VERSION",
    "ZENDESK_DELIVERY_LIMITS",
    "ZENDESK_RETRY_POLICY",
    "EventPublisher",
    "event_time",
    "sign_webhook",
    "signature_timestamp",
    "ticket_detail",
    "user_detail",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
TICKET_EVENT_VERSION = "2022-11-06"
USER_EVENT_VERSION = "2022-06-20"

#: The webhook circuit breaker (see the module docstring for the sources): it opens at more
#: than 1,000 errors, or at 70 % errors, within 5 minutes. UNVERIFIED, and kept configurable:
#: the 10-request minimum before the share counts, the 5 s open period, and the single test
#: request after it (``probe_after_open``).
ZENDESK_DELIVERY_LIMITS = DeliveryLimits(
    open_state="breaker_open",
    window_s=300.0,
    max_errors=1000,
    max_error_rate=0.7,
    min_requests=10,
    open_s=5.0,
    probe_after_open=True,
)

#: Zendesk retries an invocation at most 3 times (help center, "Managing webhooks"): 4 attempts.
#: Which statuses (409, 429, 503, a timeout after 10 s) and the backoff are UNVERIFIED; other
#: statuses are final.
ZENDESK_RETRY_POLICY = RetryPolicy(
    max_attempts=4,
    retry_statuses=frozenset({409, 429, 503}),
    retry_on_transport_error=True,
    backoff_initial_s=1.0,
    backoff_factor=2.0,
    backoff_max_s=60.0,
    timeout_s=10.0,
    limits=ZENDESK_DELIVERY_LIMITS,
)

Change = tuple[str, dict[str, Any]]


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's signature: base64 of HMAC-SHA256 keyed by the secret over timestamp + body."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def signature_timestamp(moment: datetime) -> str:
    """``2021-07-25T10:00:00Z``: ISO-8601 UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time(moment: datetime) -> str:
    """``2025-01-08T14:25:30.123456789Z``: nanosecond precision, as Zendesk writes it."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def _upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


def ticket_detail(ticket: Ticket, actor_id: int) -> dict[str, Any]:
    """The ticket as event payloads carry it (string ids, upper-case enums)."""
    return {
        "actor_id": str(actor_id),
        "assignee_id": _sid(ticket.assignee_id),
        "brand_id": None,
        "created_at": event_time(ticket.created_at),
        "custom_status": None,
        "description": ticket.description,
        "external_id": ticket.external_id,
        "form_id": None,
        "group_id": _sid(ticket.group_id),
        "id": str(ticket.id),
        "is_public": ticket.is_public,
        "organization_id": _sid(ticket.organization_id),
        "priority": _upper(ticket.priority),
        "requester_id": str(ticket.requester_id),
        "status": "DELETED" if ticket.deleted else ticket.status.upper(),
        "subject": ticket.subject,
        "submitter_id": str(ticket.submitter_id),
        "tags": list(ticket.tags),
        "type": _upper(ticket.type),
        "updated_at": event_time(ticket.updated_at),
        "via": {"channel": ticket.channel},
    }


def user_detail(user: User) -> dict[str, Any]:
    """The user as event payloads carry it; absent ids are "0" and absent strings "" there."""
    return {
        "created_at": event_time(user.created_at),
        "email": user.email or "",
        "external_id": user.external_id or "",
        "default_group_id": "0",
        "id": str(user.id),
        "organization_id": str(user.organization_id or 0),
        "role": user.role,
        "updated_at": event_time(user.updated_at),
    }


class EventPublisher:
    """Builds, signs and hands event webhooks to the dispatcher; keeps counts for tests."""

    def __init__(
        self,
        *,
        config: ZendeskSandboxConfig,
        clock: Clock,
        rng: random.Random,
        dispatcher: WebhookDispatcher | None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._rng = rng
        self._dispatcher = dispatcher
        self.counts: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=500)

    def reset(self) -> None:
        self.counts.clear()
        self.recent.clear()

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def headers(self, body: bytes, invocation_id: str) -> dict[str, str]:
        """Signed headers of one invocation, signed once when it is built: retries re-send
        them unchanged (no page says Zendesk signs a retry again; module docstring)."""
        timestamp = signature_timestamp(self._clock.now())
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
            "X-Zendesk-Account-Id": str(self._config.account_id),
            "X-Zendesk-Webhook-Id": self._config.webhook_id,
            "X-Zendesk-Webhook-Invocation-Id": invocation_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_webhook(self._config.webhook_secret, timestamp, body),
        }

    async def ticket_events(self, ticket: Ticket, actor_id: int, changes: list[Change]) -> None:
        detail = ticket_detail(ticket, actor_id)
        await self._publish("ticket", ticket.id, detail, changes, TICKET_EVENT_VERSION)

    async def user_events(self, user: User, changes: list[Change]) -> None:
        await self._publish("user", user.id, user_detail(user), changes, USER_EVENT_VERSION)

    async def _publish(
        self,
        domain: str,
        record_id: int,
        detail: Mapping[str, Any],
        changes: list[Change],
        version: str,
    ) -> None:
        if not changes:
            return
        sequence_id = self._uuid().hex.upper()
        now = self._clock.now()
        for position, (kind, event) in enumerate(changes, start=1):
            event_type = f"zen:event-type:{domain}.{kind}"
            meta = {"sequence": {"id": sequence_id, "position": position, "total": len(changes)}}
            envelope = {
                "type": event_type,
                "account_id": self._config.account_id,
                "id": str(self._uuid()),
                "time": event_time(now),
                "zendesk_event_version": version,
                "subject": f"zen:{domain}:{record_id}",
                "detail": dict(detail),
                "event": {**event, "meta": meta},
            }
            self.counts[event_type] += 1
            self.recent.append(envelope)
            logger.debug("zendesk webhook event type=%s subject=%s", event_type, record_id)
            if self._dispatcher is None:
                continue
            body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
            invocation_id = str(self._rng.getrandbits(63))
            await self._dispatcher.emit(body, self.headers(body, invocation_id))
