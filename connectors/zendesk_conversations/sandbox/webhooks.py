"""Webhook notifications in the v2 envelope, authenticated with ``X-API-Key``.

Each event goes out in its own POST::

    {"app": {"id": APP}, "webhook": {"id": WEBHOOK, "version": "v2"},
     "events": [{"id", "type", "createdAt", "payload"}]}

The webhook's shared secret travels in the ``X-API-Key`` header; nothing is signed (Sunshine
uses no HMAC). Delivery, retries (:data:`SUNSHINE_RETRY_POLICY`) and faults are the base
dispatcher's job.

Which events the webhook receives: those of its triggers; and, for ``conversation:message``,
only while its integration may hear the conversation under the switchboard's rules (the
switchboard is disabled, or the integration is not on it, or it is active or pending there,
or it has ``deliverStandbyEvents``). Switchboard events are always delivered.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from connectors.base.sandbox.webhooks import WebhookDispatcher
from connectors.zendesk_conversations.sandbox.config import SunshineSandboxConfig
from connectors.zendesk_conversations.sandbox.model import Event
from connectors.zendesk_conversations.sandbox.state import SunshineState

__all__ = ["WebhookPublisher", "envelope"]

logger = logging.getLogger(__name__)

_STANDBY_FILTERED = frozenset({"conversation:message"})


def envelope(config: SunshineSandboxConfig, event: Event) -> dict[str, Any]:
    return {
        "app": {"id": config.app_id},
        "webhook": {"id": config.webhook_id, "version": "v2"},
        "events": [
            {
                "id": event.id,
                "type": event.type,
                "createdAt": event.created_at,
                "payload": event.payload,
            }
        ],
    }


class WebhookPublisher:
    """Turns state events into deliveries for the app's one custom-integration webhook."""

    def __init__(self, state: SunshineState, dispatcher: WebhookDispatcher | None) -> None:
        self._state = state
        self._dispatcher = dispatcher
        self.published: Counter[str] = Counter()
        self.withheld: Counter[str] = Counter()
        #: The last envelopes published, newest last (for the admin snapshot).
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    def reset(self) -> None:
        self.published.clear()
        self.withheld.clear()
        self.recent.clear()

    def hears(self, event: Event) -> bool:
        """Whether the webhook's integration receives ``event`` (triggers + standby rule)."""
        config = self._state.config
        if event.type not in config.webhook_triggers:
            return False
        if event.type not in _STANDBY_FILTERED or event.conversation_id is None:
            return True
        switchboard = self._state.switchboard
        if not switchboard.enabled:
            return True
        linked = [
            s
            for s in switchboard.integrations.values()
            if s.integration_id == config.integration_id
        ]
        if not linked:
            return True
        conversation = self._state.conversations.get(event.conversation_id)
        if conversation is None:
            return True
        return any(
            s.id in (conversation.active_id, conversation.pending_id) or s.deliver_standby_events
            for s in linked
        )

    async def publish(self, events: Sequence[Event]) -> None:
        config = self._state.config
        for event in events:
            if not self.hears(event):
                self.withheld[event.type] += 1
                logger.debug("sunshine webhook withheld type=%s event_id=%s", event.type, event.id)
                continue
            body = envelope(config, event)
            self.published[event.type] += 1
            self.recent.append(body)
            if self._dispatcher is None:
                continue
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json", "X-API-Key": config.webhook_secret}
            await self._dispatcher.emit(raw, headers)
            logger.debug("sunshine webhook queued type=%s event_id=%s", event.type, event.id)

    def counters(self) -> dict[str, Any]:
        return {
            "webhooks_published": dict(self.published),
            "webhooks_withheld": dict(self.withheld),
        }
