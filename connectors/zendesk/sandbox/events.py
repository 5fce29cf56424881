"""Event-subscription webhooks: the envelope Zendesk sends and the way it signs it.

Each change becomes one POST. The envelope follows the reference: string ids, upper-case
ticket enums, ``time`` with nanoseconds, a ``detail`` snapshot of the record after the change,
and an ``event`` whose ``meta.sequence`` groups the events one API call caused. The signature
is ``base64(HMAC-SHA256(secret, timestamp + body))`` with the secret's UTF-8 bytes as the key.

Event payload shapes the public docs leave open (``created`` and ``soft_deleted`` bodies,
``user.identity_created``) are marked UNVERIFIED where they are built.
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

from connectors.base.sandbox.clock import Clock
from connectors.base.sandbox.webhooks import AttemptRenderer, RetryPolicy, WebhookDispatcher
from connectors.zendesk.sandbox.config import ZendeskSandboxConfig
from connectors.zendesk.sandbox.state import Ticket, User

__all__ = [
    "SIGNATURE_HEADER",
    "TICKET_EVENT_VERSION",
    "TIMESTAMP_HEADER",
    "USER_EVENT_VERSION",
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

#: Zendesk retries a delivery answered with 409, 429 or 503, or not answered within 10 s
#: (reference, retry counts UNVERIFIED); other statuses are final.
ZENDESK_RETRY_POLICY = RetryPolicy(
    max_attempts=4,
    retry_statuses=frozenset({409, 429, 503}),
    retry_on_transport_error=True,
    backoff_initial_s=1.0,
    backoff_factor=2.0,
    backoff_max_s=60.0,
    timeout_s=10.0,
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
        """Signed headers for one attempt; each attempt is signed at its own send time."""
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
            await self._dispatcher.emit(
                body,
                self.headers(body, invocation_id),
                render_attempt=self._resign(body, invocation_id),
            )

    def _resign(self, body: bytes, invocation_id: str) -> AttemptRenderer:
        """Retries resend the same body, signed again at their own send time."""

        def render(_attempt: int) -> tuple[bytes, Mapping[str, str]]:
            return body, self.headers(body, invocation_id)

        return render
