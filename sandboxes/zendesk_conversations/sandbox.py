"""The Zendesk Conversations (Sunshine Conversations v2) sandbox as a :class:`PlatformSandbox`.

Platform behaviour lives in the modules it wires together, each citing the spec
(``sunshine-conversations-openapi.yaml``) or the page it follows: ``auth`` (basic and JWT
keys, scopes), ``errors`` (error bodies, 429 without ``Retry-After``: spec "Rate Limits"
asks for exponential backoff and documents no header), ``routes_*`` (operations),
``webhooks`` (batching and the spec's retry policy). Injected faults answer in the spec's
error shape ``{"errors":[{"code","title"}]}`` (spec Introduction, "Errors").
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from aiohttp import web
from pydantic import SecretStr

from connectors.base.settings import ConnectorSettings
from sandboxes.base.server import Middleware, PlatformSandbox, SandboxContext
from sandboxes.base.webhooks import RetryPolicy
from sandboxes.zendesk_conversations import errors
from sandboxes.zendesk_conversations.auth import ApiKey, Authenticator
from sandboxes.zendesk_conversations.config import (
    SUNSHINE_RETRY_POLICY,
    SunshineSandboxConfig,
)
from sandboxes.zendesk_conversations.http import Api, sunshine_middleware
from sandboxes.zendesk_conversations.render import (
    switchboard_integration_json,
    switchboard_json,
)
from sandboxes.zendesk_conversations.routes_agent import AgentRoutes
from sandboxes.zendesk_conversations.routes_conversations import ConversationRoutes
from sandboxes.zendesk_conversations.routes_switchboard import SwitchboardRoutes
from sandboxes.zendesk_conversations.routes_users import UserRoutes
from sandboxes.zendesk_conversations.state import SunshineState
from sandboxes.zendesk_conversations.webhooks import WebhookPublisher

__all__ = ["SunshineSandbox"]

logger = logging.getLogger(__name__)


class SunshineSandbox(PlatformSandbox):
    """One Sunshine Conversations app: users, conversations, messages, a switchboard shared by
    an AI agent and Zendesk's agent workspace, and the custom integration's webhook."""

    platform: ClassVar[str] = "zendesk_conversations"
    webhook_retry_policy: ClassVar[RetryPolicy] = SUNSHINE_RETRY_POLICY

    def __init__(
        self, *, context: SandboxContext, config: SunshineSandboxConfig | None = None
    ) -> None:
        super().__init__(context=context)
        self.config = config or SunshineSandboxConfig()
        self.state = SunshineState(
            self.config, rng=context.derive_rng("sunshine-ids"), clock=context.clock
        )
        self.publisher = WebhookPublisher(self.state, context.webhooks)
        self.api = Api(state=self.state, publisher=self.publisher)
        app_key = ApiKey(self.config.key_id, self.config.key_secret, self.config.app_id)
        integration_key = ApiKey(
            self.config.integration_key_id,
            self.config.integration_key_secret,
            self.config.app_id,
            integration_id=self.config.integration_id,
        )
        self.authenticator = Authenticator(
            {k.key_id: k for k in (app_key, integration_key)}, context.clock
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            *UserRoutes(self.api).routes(),
            *ConversationRoutes(self.api).routes(),
            *SwitchboardRoutes(self.api).routes(),
            *AgentRoutes(self.api).routes(),
        ]

    def middlewares(self) -> list[Middleware]:
        return [sunshine_middleware(self.authenticator)]

    async def stop(self) -> None:
        # Send the batch still held before the dispatcher closes.
        await self.publisher.aclose()

    async def flush_webhooks(self) -> None:
        """Send the held batch now (before draining the dispatcher, e.g. in tests/benches)."""
        await self.publisher.flush()

    def reset(self) -> None:
        self.state.reset()
        self.publisher.reset()
        logger.info("sunshine sandbox reset app_id=%s", self.config.app_id)

    def snapshot(self) -> dict[str, Any]:
        config = self.config
        switchboard = self.state.switchboard
        hooks = self.context.webhooks
        return {
            "app": {"id": config.app_id, "keyId": config.key_id},
            "integration": {
                "id": config.integration_id,
                "type": "custom",
                "displayName": config.integration_name,
                "webhooks": [
                    {
                        "id": config.webhook_id,
                        "version": "v2",
                        "target": hooks.target_url if hooks else None,
                        "triggers": list(config.webhook_triggers),
                        # As GET .../webhooks/{id} shows it: receivers compare X-API-Key to it.
                        "secret": config.webhook_secret,
                    }
                ],
            },
            "switchboard": switchboard_json(switchboard)
            | {
                "switchboardIntegrations": [
                    switchboard_integration_json(s) for s in switchboard.integrations.values()
                ]
            },
            **self.state.snapshot(),
            "recentWebhooks": list(self.publisher.recent),
        }

    def describe(self) -> dict[str, str]:
        return {"app_id": self.config.app_id}

    def worker_connector(self) -> ConnectorSettings:
        # Deskstream is the custom integration: it calls with that integration's API key (so
        # switchboard actions are its own) and its webhook carries the secret in X-API-Key.
        config = self.config
        return ConnectorSettings.model_validate(
            {
                "platform": "zendesk_conversations",
                "secret": SecretStr(config.webhook_secret),
                "api_base_url": self.context.base_url,
                "api_user": config.integration_key_id,
                "api_token": SecretStr(config.integration_key_secret),
                "service_account_id": config.integration_id,
                # API paths name the app: the connector's own setting (APP_ID)
                "app_id": config.app_id,
            }
        )

    def counters(self) -> dict[str, Any]:
        return {
            "users": len(self.state.users),
            "conversations": len(self.state.conversations),
            "messages": sum(len(c.messages) for c in self.state.conversations.values()),
            **self.publisher.counters(),
        }

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        return errors.error_response(status, code, message)

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        return errors.rate_limited_response(
            retry_after, send_retry_after=self.config.send_retry_after
        )
