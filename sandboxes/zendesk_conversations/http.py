"""What every Sunshine route shares: paths, JSON bodies, auth and error rendering.

The API is served both at ``/v2/apps/{appId}/...`` and under the ``/sc`` prefix Zendesk
accounts use (``https://{subdomain}.zendesk.com/sc/v2/...``), so a client can be pointed at
the sandbox with either base URL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from sandboxes.zendesk_conversations.auth import ApiKey, Authenticator
from sandboxes.zendesk_conversations.config import JSON_BODY_LIMIT
from sandboxes.zendesk_conversations.errors import (
    SunshineAPIError,
    SwitchboardActionFailed,
    bad_request,
    error_response,
)
from sandboxes.zendesk_conversations.model import Event
from sandboxes.zendesk_conversations.state import SunshineState
from sandboxes.zendesk_conversations.webhooks import WebhookPublisher

__all__ = [
    "API_PREFIXES",
    "Api",
    "Handler",
    "caller_integration",
    "json_response",
    "page_links",
    "read_json",
    "routes_for",
    "sunshine_middleware",
]

logger = logging.getLogger(__name__)

API_PREFIXES: tuple[str, ...] = ("", "/sc")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Where the middleware leaves the API key a request was authenticated with.
_CALLER: Final = web.RequestKey("sunshine.api_key", ApiKey)


def caller_integration(request: web.Request) -> str | None:
    """The integration a call was made by (a Custom Integration API Key), else None (an app
    key, or a sandbox-only endpoint)."""
    key = request.get(_CALLER)
    return key.integration_id if isinstance(key, ApiKey) else None


@dataclass
class Api:
    """What the route handlers work on."""

    state: SunshineState
    publisher: WebhookPublisher

    async def publish(self, events: Sequence[Event]) -> None:
        await self.publisher.publish(events)

    async def act(self, action: Callable[[], list[Event]]) -> web.Response:
        """Run a switchboard action and publish what it caused; a failed action publishes its
        ``switchboard:*:failure`` event, then answers its error (or 200, per config)."""
        try:
            events = action()
        except SwitchboardActionFailed as failed:
            await self.publish([failed.failure])
            if not self.state.config.switchboard_failure_http_error:
                return json_response({})
            raise
        await self.publish(events)
        return json_response({})


def routes_for(method: str, suffix: str, handler: Handler) -> list[web.RouteDef]:
    """``method`` on ``/v2/apps/{appId}{suffix}`` under every API prefix."""
    return [
        web.route(method, f"{prefix}/v2/apps/{{appId}}{suffix}", handler) for prefix in API_PREFIXES
    ]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The JSON body (None when optional and empty); 413 past 100 kB, 400 if not JSON."""
    if request.content_length is not None and request.content_length > JSON_BODY_LIMIT:
        raise SunshineAPIError(413, "payload_too_large", "Request entity too large")
    raw = await request.read()
    if len(raw) > JSON_BODY_LIMIT:
        raise SunshineAPIError(413, "payload_too_large", "Request entity too large")
    if not raw.strip():
        if required:
            raise bad_request("A JSON request body is required")
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("Invalid JSON in request body") from None


def page_links(request: web.Request, before: str | None, after: str | None) -> dict[str, str]:
    """``links.prev``/``links.next`` for cursor pages, keeping the other query parameters."""
    kept = [f"{key}={value}" for key, value in request.query.items() if not key.startswith("page[")]
    base = f"{request.url.origin()}{request.path}"
    links: dict[str, str] = {}
    for name, key, cursor in (("prev", "before", before), ("next", "after", after)):
        if cursor is not None:
            links[name] = f"{base}?{'&'.join([*kept, f'page[{key}]={cursor}'])}"
    return links


def _is_api_path(path: str) -> bool:
    return any(path.startswith(f"{prefix}/v2/") for prefix in API_PREFIXES)


def sunshine_middleware(authenticator: Authenticator) -> Callable[..., Awaitable[Any]]:
    """Authenticates API calls and renders every failure in the platform's error shape."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        api_path = _is_api_path(request.path)
        try:
            if api_path:
                app_id = request.match_info.get("appId")
                if app_id is None:
                    raise SunshineAPIError(404, "not_found", "Resource not found")
                key = authenticator.authenticate(request.headers.get("Authorization"), app_id)
                if key.scope == "integration" and "/switchboards" in request.path:
                    # The switchboard configuration endpoints allow app and account scope only.
                    raise SunshineAPIError(403, "forbidden", "Forbidden")
                request[_CALLER] = key
            return await handler(request)
        except SunshineAPIError as exc:
            logger.debug(
                "sunshine api error method=%s path=%s status=%s code=%s",
                request.method,
                request.path,
                exc.status,
                exc.code,
            )
            return error_response(exc.status, exc.code, exc.title)
        except web.HTTPNotFound:
            if not api_path:
                raise
            return error_response(404, "not_found", "Resource not found")
        except web.HTTPMethodNotAllowed:
            if not api_path:
                raise
            return error_response(405, "method_not_allowed", "Method not allowed")

    return middleware
