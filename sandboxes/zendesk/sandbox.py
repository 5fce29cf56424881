""":class:`ZendeskSandbox`, the Zendesk Support platform as a :class:`PlatformSandbox`.

Injected faults answer in Zendesk's shapes (:mod:`.errors`): an injected 429 burst carries
``Retry-After`` and the rate headers with nothing remaining, as "Rate limits"
(https://developer.zendesk.com/api-reference/introduction/rate-limits) documents a refused
request; injected 5xx use the UNVERIFIED edge bodies of :func:`.errors.server_error`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web
from pydantic import SecretStr

from connectors.base.settings import ConnectorSettings
from sandboxes.base.server import Middleware, PlatformSandbox, SandboxContext
from sandboxes.base.webhooks import RetryPolicy
from sandboxes.zendesk.config import ZendeskSandboxConfig
from sandboxes.zendesk.core import ZendeskCore
from sandboxes.zendesk.errors import rate_limited, render, server_error
from sandboxes.zendesk.events import ZENDESK_RETRY_POLICY
from sandboxes.zendesk.imports import import_routes
from sandboxes.zendesk.routes_export import export_routes
from sandboxes.zendesk.routes_misc import misc_routes
from sandboxes.zendesk.routes_tickets import ticket_routes
from sandboxes.zendesk.routes_users import user_routes

__all__ = ["ZendeskSandbox"]


class ZendeskSandbox(PlatformSandbox):
    """Zendesk Support: tickets, ticket imports, comments, users, uploads, fields, incremental
    export, idempotent creates, Zendesk's rate limits and signed event webhooks.

    Credentials for the seeded integration user (an admin) come from the config:
    ``{integration_email}/token:{api_tokens[0]}`` or the OAuth token in ``oauth_tokens``.
    """

    platform: ClassVar[str] = "zendesk"
    webhook_retry_policy: ClassVar[RetryPolicy] = ZENDESK_RETRY_POLICY

    def __init__(
        self, *, context: SandboxContext, config: ZendeskSandboxConfig | None = None
    ) -> None:
        super().__init__(context=context)
        self.config = config or ZendeskSandboxConfig()
        self.core = ZendeskCore(
            config=self.config,
            clock=context.clock,
            rng=context.derive_rng("zendesk"),
            dispatcher=context.webhooks,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            *ticket_routes(self.core),
            *import_routes(self.core),
            *user_routes(self.core),
            *misc_routes(self.core),
            *export_routes(self.core),
        ]

    def middlewares(self) -> list[Middleware]:
        return [self.core.middleware]

    def reset(self) -> None:
        self.core.reset()

    def snapshot(self) -> dict[str, Any]:
        config = self.config
        return {
            "account": {
                "subdomain": config.subdomain,
                "account_id": config.account_id,
                "plan": config.plan,
                "rate_limit_per_minute": config.account_rate_limit,
            },
            # A sandbox's credentials are not secrets; the demo and tests read them here.
            "credentials": {
                "email": config.integration_email,
                "api_token": config.api_tokens[0] if config.api_tokens else None,
                "oauth_tokens": sorted(config.oauth_tokens),
                "integration_user_id": self.core.integration_user.id,
                "webhook_secret": config.webhook_secret,
            },
            **self.core.state.snapshot(),
        }

    def describe(self) -> dict[str, str]:
        return {"subdomain": self.config.subdomain, "account_id": str(self.config.account_id)}

    def worker_connector(self) -> ConnectorSettings:
        # The worker signs in as the seeded integration user, whose changes are its echoes.
        config = self.config
        return ConnectorSettings(
            platform="zendesk",
            secret=SecretStr(config.webhook_secret),
            api_base_url=self.context.base_url,
            api_user=config.integration_email,
            api_token=SecretStr(config.api_tokens[0]) if config.api_tokens else None,
            service_account_id=str(self.core.integration_user.id),
        )

    def counters(self) -> dict[str, Any]:
        return self.core.snapshot_counters()

    def error_response(self, status: int, code: str, message: str) -> web.StreamResponse:
        return render(server_error(status))

    def rate_limited_response(self, retry_after: float) -> web.StreamResponse:
        seconds = max(1, round(retry_after))
        limit = str(self.config.account_rate_limit)
        return render(
            rate_limited(
                seconds,
                {
                    "X-Rate-Limit": limit,
                    "X-Rate-Limit-Remaining": "0",
                    "ratelimit-limit": limit,
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(seconds),
                },
            )
        )
