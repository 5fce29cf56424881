"""The Intercom sandbox: :class:`IntercomSandbox` plugs the state, routes, gateway and
notifications into the shared sandbox base.

Besides the REST API it serves the teammate's inbox for what API 2.14 cannot do:
``PUT /_sandbox/inbox/conversations/{id}/priority`` ``{"admin_id", "priority":
"priority" | "not_priority"}`` marks a conversation as priority, as a teammate does in the
Inbox, and sends ``conversation.priority.updated`` (see ``conversations``). Snoozes that have
run out are woken before each request, on the sandbox's clock.

Platform behaviour and where it is sourced: REST shapes from ``intercom-openapi-2.14.yaml``
(contract-tested); the gateway's Bearer auth, 10-second rate windows and ``X-RateLimit-*``
headers (sent only to authenticated requests, "They are not sent when the request has no
valid credentials") and the 429 ``rate_limit_exceeded`` "Exceeded rate limit of N in
10_seconds" from "Rate Limiting",
https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting (see
``gateway`` and ``config``); error bodies from "Error Objects" (see ``errors``); webhook
delivery, retries, pause and suspension from "Delivering Webhook Notifications",
https://developers.intercom.com/docs/webhooks/webhook-notifications (see ``webhooks`` and
the base governor). An injected 429 burst looks like a spent window until its end.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from connectors.base.settings import ConnectorSettings
from sandboxes.base.ratelimit import FixedWindowLimiter
from sandboxes.base.server import Middleware, PlatformSandbox, SandboxContext
from sandboxes.intercom.config import IntercomSandboxConfig
from sandboxes.intercom.conversations import ConversationService
from sandboxes.intercom.errors import IntercomAPIError, error_list
from sandboxes.intercom.gateway import Gateway
from sandboxes.intercom.messages import message_routes
from sandboxes.intercom.routes_contacts import contact_routes, json_response, read_json
from sandboxes.intercom.routes_conversations import conversation_routes
from sandboxes.intercom.routes_workspace import workspace_routes
from sandboxes.intercom.state import Event, IntercomState
from sandboxes.intercom.webhooks import (
    INTERCOM_RETRY_POLICY,
    PING_ITEM,
    NotificationFactory,
)

__all__ = ["IntercomSandbox"]

logger = logging.getLogger(__name__)


class IntercomSandbox(PlatformSandbox):
    """An offline Intercom workspace speaking REST API 2.14 and sending signed webhooks."""

    platform = "intercom"
    webhook_retry_policy = INTERCOM_RETRY_POLICY

    def __init__(
        self, *, context: SandboxContext, config: IntercomSandboxConfig | None = None
    ) -> None:
        super().__init__(context=context)
        self.config = config or IntercomSandboxConfig()
        self.state = IntercomState(self.config, context.clock, context.rng)
        self.conversations = ConversationService(self.state)
        self.limiter = FixedWindowLimiter(
            self.config.window_limit, self.config.rate_limit_window_s, context.clock
        )
        self.gateway = Gateway(self.config, self.limiter, context.derive_rng("request_ids"))
        self.notifications = NotificationFactory(
            app_id=self.config.app_id,
            client_secret=self.config.client_secret,
            rng=context.derive_rng("notifications"),
        )
        self.topics: Counter[str] = Counter()

    # -- PlatformSandbox -----------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            *contact_routes(self.state, self.publish),
            *conversation_routes(self.conversations, self.publish),
            *message_routes(self.conversations, self.publish),
            *workspace_routes(self.state),
            web.put("/_sandbox/inbox/conversations/{id}/priority", self._set_priority),
        ]

    def middlewares(self) -> list[Middleware]:
        return [self._wake_snoozed, self.gateway.middleware]

    @web.middleware
    async def _wake_snoozed(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Time only moves between requests (a manual clock in tests), so waking the due
        # snoozes first makes every answer see the state the clock implies.
        await self.publish(self.conversations.wake_due(self.config.snooze_expiry_topic))
        return await handler(request)

    async def _set_priority(self, request: web.Request) -> web.StreamResponse:
        # /_sandbox is outside the gateway, so refusals are rendered here in Intercom's shape.
        try:
            events = self.conversations.set_priority(
                request.match_info["id"], await read_json(request)
            )
        except IntercomAPIError as exc:
            return error_list(
                exc.status,
                exc.code,
                exc.message,
                request_id=self.gateway.request_id(),
                field=exc.field,
            )
        await self.publish(events)
        conversation = self.conversations.get(request.match_info["id"])
        return json_response(self.conversations.render(conversation, conversation.parts))

    def is_write(self, request: web.Request) -> bool:
        # Searches are reads sent as POST (``/contacts/search``, ``/conversations/search``).
        return super().is_write(request) and not request.path.endswith("/search")

    def reset(self) -> None:
        self.state.reset()
        self.limiter.reset()
        self.topics.clear()

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        return {
            "app_id": self.config.app_id,
            "contacts": [state.render_contact(c) for c in state.contacts.values()],
            "conversations": [
                self.conversations.render(c, c.parts) for c in state.conversations.values()
            ],
            "tags": [t.basic() for t in state.tags.values()],
            "admins": [a.to_api() for a in state.admins.values()],
            "data_attributes": [a.to_api() for a in state.attributes.values() if a.custom],
        }

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        return error_list(status, code, message, request_id=self.gateway.request_id())

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        reset_at = self.context.clock.now().timestamp() + retry_after
        return self.gateway.limited_response(retry_after, reset_at)

    def counters(self) -> dict[str, Any]:
        return {
            "contacts": len(self.state.contacts),
            "conversations": len(self.state.conversations),
            "notifications": dict(sorted(self.topics.items())),
            "rejected": dict(self.gateway.rejected),
        }

    def describe(self) -> dict[str, str]:
        return {"app_id": self.config.app_id}

    def worker_connector(self) -> ConnectorSettings:
        # The access token belongs to the workspace's first admin (``GET /me``): Deskstream's
        # bot, whose replies and notes the worker recognises as its own.
        return ConnectorSettings(
            platform="intercom",
            secret=SecretStr(self.config.client_secret),
            api_base_url=self.context.base_url,
            api_token=SecretStr(self.config.access_tokens[0]),
            service_account_id=self.state.token_admin().id,
        )

    async def start(self) -> None:
        if self.config.send_ping_on_start:
            await self.publish([Event("ping", dict(PING_ITEM))])

    # -- webhooks ------------------------------------------------------------------------

    def subscribed(self, topic: str) -> bool:
        topics = self.config.webhook_topics
        return topic == "ping" or topics is None or topic in topics

    async def publish(self, events: list[Event]) -> None:
        """Sign and queue one notification per event the subscription wants."""
        dispatcher = self.context.webhooks
        for event in events:
            if not self.subscribed(event.topic):
                continue
            self.topics[event.topic] += 1
            if dispatcher is None:
                continue
            envelope = self.notifications.envelope(
                event.topic, event.item, created_at=self.state.now()
            )
            render = functools.partial(self.notifications.render, envelope)
            body, headers = render(1)
            await dispatcher.emit(body, headers, render_attempt=render)
            logger.debug(
                "intercom sandbox notification topic=%s id=%s", event.topic, envelope["id"]
            )
