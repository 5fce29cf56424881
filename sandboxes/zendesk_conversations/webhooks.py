"""Webhook notifications in the v2 envelope, authenticated with ``X-API-Key``.

One POST carries one or more events::

    {"app": {"id": APP}, "webhook": {"id": WEBHOOK, "version": "v2"},
     "events": [{"id", "type", "createdAt", "payload"}, ...]}

Sources (official OpenAPI, ``sunshine-conversations-openapi.yaml``):

* ``x-webhooks/Webhook Event``: "A webhook payload contains an array of events, which may or
  may not originate from the same user or conversation. [...] your application should take
  care to process each event in the array." Events heard close together are therefore held
  and sent in one payload: a batch is sent when it holds ``webhook_batch_max_events`` events
  or ``webhook_batch_window_s`` after its first event (both UNVERIFIED values, see
  :mod:`.config`), in the order the events happened.
* tag ``Webhooks``, "Securing Sunshine Conversations Webhooks": the webhook's shared secret
  travels in the ``X-API-Key`` header; nothing is signed (no HMAC).
* tag ``Webhooks``, "Retry policy": retries are per *payload*. A batch is serialised once and
  handed to the base dispatcher as bytes, so every attempt re-sends the same batch byte for
  byte (:data:`SUNSHINE_RETRY_POLICY`; delivery and faults are the dispatcher's job).

Which events the webhook receives: those of its triggers; and, for ``conversation:message``,
only while its integration may hear the conversation under the switchboard's rules (the
switchboard is disabled, or the integration is not on it, or it is active or pending there,
or it has ``deliverStandbyEvents``; switchboard guide, "Switchboards and switchboard
integrations", https://developer.zendesk.com/documentation/conversations/messaging-platform/
programmable-conversations/switchboard). Switchboard events are always delivered. The rule
is applied when the event happens, not when its batch is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from sandboxes.base.webhooks import WebhookDispatcher
from sandboxes.zendesk_conversations.config import SunshineSandboxConfig
from sandboxes.zendesk_conversations.model import Event
from sandboxes.zendesk_conversations.state import SunshineState

__all__ = ["WebhookPublisher", "envelope"]

logger = logging.getLogger(__name__)

_STANDBY_FILTERED = frozenset({"conversation:message"})


def envelope(config: SunshineSandboxConfig, events: Sequence[Event]) -> dict[str, Any]:
    """The v2 payload for ``events``, oldest first."""
    return {
        "app": {"id": config.app_id},
        "webhook": {"id": config.webhook_id, "version": "v2"},
        "events": [
            {"id": e.id, "type": e.type, "createdAt": e.created_at, "payload": e.payload}
            for e in events
        ],
    }


class WebhookPublisher:
    """Turns state events into deliveries for the app's one custom-integration webhook."""

    def __init__(self, state: SunshineState, dispatcher: WebhookDispatcher | None) -> None:
        self._state = state
        self._dispatcher = dispatcher
        self.published: Counter[str] = Counter()
        self.withheld: Counter[str] = Counter()
        #: The last envelopes sent, newest last (for the admin snapshot).
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)
        self._batch: list[Event] = []
        self._timer: asyncio.Task[None] | None = None

    def reset(self) -> None:
        self._cancel_timer()
        self._batch.clear()
        self.published.clear()
        self.withheld.clear()
        self.recent.clear()

    @property
    def held(self) -> int:
        """Events waiting for their batch to be sent."""
        return len(self._batch)

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
        """Add the events the webhook hears to the open batch; send it when it is due."""
        config = self._state.config
        for event in events:
            if not self.hears(event):
                self.withheld[event.type] += 1
                logger.debug("sunshine webhook withheld type=%s event_id=%s", event.type, event.id)
                continue
            self.published[event.type] += 1
            self._batch.append(event)
            if len(self._batch) >= config.webhook_batch_max_events:
                await self.flush()
        window = config.webhook_batch_window_s
        if not self._batch or window is None:
            return
        if window == 0 or self._dispatcher is None:
            # Nothing is delivered without a target: no timer per event for a snapshot entry.
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_after(window))

    async def flush(self) -> None:
        """Send the open batch now (a no-op when nothing is held)."""
        self._cancel_timer()
        batch, self._batch = self._batch, []
        if not batch:
            return
        config = self._state.config
        body = envelope(config, batch)
        self.recent.append(body)
        if self._dispatcher is None:
            return
        # Serialised once: retries of this payload re-send exactly these bytes.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-API-Key": config.webhook_secret}
        await self._dispatcher.emit(raw, headers)
        logger.debug("sunshine webhook queued events=%s first_event_id=%s", len(batch), batch[0].id)

    async def _flush_after(self, window: float) -> None:
        await asyncio.sleep(window)
        self._timer = None  # this task is finishing: flush() must not cancel it
        await self.flush()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def aclose(self) -> None:
        """Send what is held and stop the batch timer (the sandbox is shutting down)."""
        timer = self._timer
        await self.flush()
        if timer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    def counters(self) -> dict[str, Any]:
        return {
            "webhooks_published": dict(self.published),
            "webhooks_withheld": dict(self.withheld),
            "webhook_events_held": self.held,
        }
