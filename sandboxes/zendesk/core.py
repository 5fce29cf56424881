"""The account behind the routes: state, services, limits, idempotency, webhooks, and the
middleware every ``/api/v2`` request passes (auth, OAuth scopes, the account rate limit).

Rate limits, from "Rate limits",
https://developer.zendesk.com/api-reference/introduction/rate-limits, and "Best practices
for avoiding rate limiting",
https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/best-practices-for-avoiding-rate-limiting/

* requests per minute per account by plan (``config.PLAN_RATE_LIMITS``), counted in the
  current minute (windows on minute boundaries: :mod:`sandboxes.base.ratelimit`);
* every response carries ``X-Rate-Limit``/``X-Rate-Limit-Remaining``; the Ticketing APIs
  (tickets, users: every endpoint this sandbox serves) add ``ratelimit-limit``,
  ``ratelimit-remaining`` and ``ratelimit-reset`` (seconds until the window ends);
* past the limit, 429 with ``Retry-After`` in seconds (the body: :mod:`.errors`);
* endpoint limits on Update Ticket (``PUT /api/v2/tickets/{id}``): 30 updates per 10 minutes
  per user per ticket (``ticket_update_limiter``, a text 429) and 100 requests a minute per
  account (``ticket_update_account_limiter``, a JSON 429 whose body is UNVERIFIED), which a
  sync loop or a burst of updates reaches long before the plan's 700;
* incremental exports: 10 requests a minute (same page).

Not modelled: the ``zendesk-ratelimit-tickets-index`` header of List Tickets and that
endpoint's deep-page limit (the product pages comments and fields by cursor, not tickets).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandboxes.base.clock import Clock
from sandboxes.base.ratelimit import FixedWindowLimiter, RateDecision
from sandboxes.base.webhooks import WebhookDispatcher
from sandboxes.zendesk.auth import Principal, authenticate, check_scope
from sandboxes.zendesk.config import ZendeskSandboxConfig
from sandboxes.zendesk.errors import (
    ZendeskError,
    bad_request,
    rate_limited,
    render,
)
from sandboxes.zendesk.events import EventPublisher
from sandboxes.zendesk.idempotency import IdempotencyCache
from sandboxes.zendesk.state import User, ZendeskState
from sandboxes.zendesk.tickets import Actor, TicketOutcome, TicketService
from sandboxes.zendesk.users import UserService

__all__ = ["API_PREFIX", "ZendeskCore", "json_response", "origin", "principal", "read_json"]

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v2/"
_PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("zendesk_principal", Principal)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode("utf-8"),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def origin(request: web.Request) -> str:
    """Scheme and host the client used, so returned URLs lead back to this sandbox."""
    return f"{request.scheme}://{request.host}"


def principal(request: web.Request) -> Principal:
    try:
        return request[_PRINCIPAL]
    except KeyError:
        raise RuntimeError("route reached without the Zendesk auth middleware") from None


async def read_json(request: web.Request, root: str | None = None) -> dict[str, Any]:
    """The JSON object body (``body[root]`` when given); 400 like Zendesk when it is not."""
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object")
    if root is None:
        return data
    inner = data.get(root)
    if not isinstance(inner, dict):
        raise ZendeskError(
            400, {"error": "ParameterMissing", "description": f"Parameter {root} is required"}
        )
    return inner


class ZendeskCore:
    """Everything one emulated account needs, shared by the route modules."""

    def __init__(
        self,
        *,
        config: ZendeskSandboxConfig,
        clock: Clock,
        rng: random.Random,
        dispatcher: WebhookDispatcher | None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng
        self.state = ZendeskState()
        self.users = UserService(self.state, clock, search_lag_s=config.search_index_lag_s)
        self.tickets = TicketService(self.state, config, clock, self.users)
        self.publisher = EventPublisher(config=config, clock=clock, rng=rng, dispatcher=dispatcher)
        self.idempotency = IdempotencyCache(config.idempotency_ttl_s, clock)
        self.account_limiter = FixedWindowLimiter(config.account_rate_limit, 60.0, clock)
        self.ticket_update_limiter = FixedWindowLimiter(
            config.ticket_update_limit, config.ticket_update_window_s, clock
        )
        self.ticket_update_account_limiter = FixedWindowLimiter(
            config.ticket_update_account_per_minute, 60.0, clock
        )
        self.incremental_limiter = FixedWindowLimiter(
            config.incremental_export_per_minute, 60.0, clock
        )
        self.counters: Counter[str] = Counter()
        self.admin: User
        self.integration_user: User
        self.reset()

    def reset(self) -> None:
        self.state.reset()
        self.publisher.reset()
        self.idempotency.reset()
        for limiter in (
            self.account_limiter,
            self.ticket_update_limiter,
            self.ticket_update_account_limiter,
            self.incremental_limiter,
        ):
            limiter.reset()
        self.counters.clear()
        self.admin, _ = self.users.create(
            {
                "name": "Sandbox Admin",
                "email": self.config.admin_email,
                "role": "admin",
                "verified": True,
            }
        )
        self.integration_user, _ = self.users.create(
            {
                "name": self.config.integration_name,
                "email": self.config.integration_email,
                "role": "admin",
                "verified": True,
            }
        )
        for agent in self.config.agents:
            self.users.create(
                {"name": agent.name, "email": agent.email, "role": agent.role, "verified": True},
                id_kind="staff",
            )

    # -- request plumbing ------------------------------------------------------------------

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        reset = max(0, math.ceil(decision.reset_at - self.clock.now().timestamp()))
        return {
            "X-Rate-Limit": str(decision.limit),
            "X-Rate-Limit-Remaining": str(decision.remaining),
            "ratelimit-limit": str(decision.limit),
            "ratelimit-remaining": str(decision.remaining),
            "ratelimit-reset": str(reset),
        }

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        headers: dict[str, str] = {}
        try:
            caller = authenticate(request.headers.get("Authorization"), self.state, self.config)
            check_scope(caller, request.method, request.path)
            decision = self.account_limiter.hit(str(self.config.account_id))
            headers = self.rate_headers(decision)
            if not decision.allowed:
                self.counters["rate_limited_account"] += 1
                raise rate_limited(decision.retry_after)
            request[_PRINCIPAL] = caller
            response = await handler(request)
        except ZendeskError as error:
            self.counters[f"status_{error.status}"] += 1
            response = render(error)
        except web.HTTPNotFound:
            response = render(
                ZendeskError(404, {"error": "InvalidEndpoint", "description": "Not found"})
            )
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    def actor(self, request: web.Request) -> Actor:
        return Actor(principal(request).user, request.headers.get("User-Agent", ""))

    async def publish(self, outcome: TicketOutcome, actor: Actor) -> None:
        """Send the webhooks of one write: new users first, then the ticket's events."""
        for user, changes in outcome.user_events:
            await self.publisher.user_events(user, changes)
        await self.publisher.ticket_events(outcome.ticket, actor.user.id, outcome.ticket_events)

    def snapshot_counters(self) -> dict[str, Any]:
        return {
            "requests": dict(self.counters),
            "webhook_events": dict(self.publisher.counts),
            "idempotency_keys": len(self.idempotency),
        }
