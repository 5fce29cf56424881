"""The Sunshine Conversations v2 calls the live chat bridge makes, on the shared ``ApiClient``.

Authentication is basic auth with the custom integration's API key (key id and secret: the
connector's ``api_user``/``api_token``): switchboard actions are then the integration's own,
which makes a repeated ``passControl`` to the same target a no-op (spec ``PassControl``).

Errors (spec Introduction, "Errors" and "Rate Limits"): 429 carries no ``Retry-After``, so the
budget waits a second and the retry policy backs off with jitter; 5xx and transport failures
are retriable (ambiguous for writes: the bridge checks its marker first); any other 4xx is
fatal, its ``errors[0].code`` and ``title`` in the message (never a credential).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from connectors.base.http import ApiClient, redact
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.settings import ConnectorSettings
from schemas.errors import ConfigurationError, FatalAPIError, RateLimitedError, RetriableAPIError

__all__ = ["SunshineClient"]

#: UNVERIFIED: Sunshine publishes no per-minute figure ("Rate Limits": limits exist and vary);
#: a budget under which a single app stays polite, overridable per connector.
DEFAULT_REQUESTS_PER_MINUTE: Final = 3000


def _detail(response: httpx.Response) -> str:
    try:
        first = response.json()["errors"][0]
        return redact(f"{first.get('code')}: {first.get('title')}", 200)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return redact(response.text, 200)


def classify(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"sunshine {response.request.method} {response.request.url.path}"
    if status == 429:
        raise RateLimitedError(f"{where} was rate limited; backing off", retry_after=1.0)
    if status >= 500:
        raise RetriableAPIError(
            f"{where} answered {status} ({_detail(response)}); will retry", status=status
        )
    raise FatalAPIError(
        f"{where} answered {status} ({_detail(response)}); check the connector's app id, "
        "API key and switchboard integration name",
        status=status,
    )


def _no_rate_headers(_: httpx.Response) -> RateHeaders:
    return RateHeaders()


class SunshineClient:
    def __init__(self, api: ApiClient, app_id: str) -> None:
        self._api = api
        self._root = f"/v2/apps/{quote(app_id, safe='')}"

    @classmethod
    def from_settings(
        cls,
        settings: ConnectorSettings,
        app_id: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> SunshineClient:
        token = settings.token()  # read at start: the bridge's client lives with the worker
        secret = token.get_secret_value() if token is not None else None
        if not settings.api_base_url or not settings.api_user or not secret:
            raise ConfigurationError(
                "the Zendesk Conversations connector needs API_BASE_URL, API_USER (the "
                "integration's API key id) and API_TOKEN (its secret); set them and restart"
            )
        http = httpx.AsyncClient(
            base_url=settings.api_base_url.rstrip("/"),
            auth=httpx.BasicAuth(settings.api_user, secret),
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(20.0, connect=5.0),
            transport=transport,
        )
        budget = RateBudget(settings.rate_limit_per_minute or DEFAULT_REQUESTS_PER_MINUTE, 60.0)
        api = ApiClient(
            http,
            platform="sunshine",
            budget=budget,
            classify=classify,
            rate_headers=_no_rate_headers,
        )
        return cls(api, app_id)

    async def _object(self, method: str, path: str, name: str, **kwargs: Any) -> dict[str, Any]:
        """The answer's ``name`` object (``{"user": {...}}`` → the user)."""
        value = (await self._json(method, path, **kwargs)).get(name)
        if not isinstance(value, dict):
            raise RetriableAPIError(f"sunshine {method} {path} answered without {name}; will retry")
        return value

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._api.request(method, f"{self._root}{path}", **kwargs)
        try:
            body = response.json()
        except ValueError:  # a proxy's or a maintenance page, a redirect
            body = None
        if not isinstance(body, dict):
            raise RetriableAPIError(
                f"sunshine {method} {path} answered {response.status_code} without a JSON "
                "object (a proxy page? check the connector's API_BASE_URL); will retry",
                status=response.status_code,
            )
        return body

    async def user(self, external_id: str) -> dict[str, Any] | None:
        """The user with this external id, or None."""
        try:
            return await self._object("GET", f"/users/{quote(external_id, safe='')}", "user")
        except FatalAPIError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_user(self, external_id: str, profile: Mapping[str, str]) -> dict[str, Any]:
        body = {"externalId": external_id, "profile": dict(profile)}
        return await self._object("POST", "/users", "user", json=body)

    async def conversations_of(self, user_id: str) -> list[dict[str, Any]]:
        """The user's conversations (first page: a chat customer has a handful)."""
        answer = await self._json("GET", "/conversations", params={"filter[userId]": user_id})
        return list(answer.get("conversations") or [])

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        path = f"/conversations/{quote(conversation_id, safe='')}"
        return await self._object("GET", path, "conversation")

    async def create_conversation(self, user_id: str, metadata: Mapping[str, str]) -> str:
        body = {
            "type": "personal",
            "participants": [{"userId": user_id}],
            "metadata": dict(metadata),
        }
        return str((await self._json("POST", "/conversations", json=body))["conversation"]["id"])

    async def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The latest page of messages (List Messages pages backwards from the newest)."""
        path = f"/conversations/{quote(conversation_id, safe='')}/messages"
        return list((await self._json("GET", path)).get("messages") or [])

    async def post_message(
        self,
        conversation_id: str,
        author: Mapping[str, Any],
        content: Mapping[str, Any],
        metadata: Mapping[str, str],
    ) -> str:
        path = f"/conversations/{quote(conversation_id, safe='')}/messages"
        body = {"author": dict(author), "content": dict(content), "metadata": dict(metadata)}
        return str((await self._json("POST", path, json=body))["messages"][0]["id"])

    async def pass_control(
        self, conversation_id: str, target: str, metadata: Mapping[str, str]
    ) -> None:
        path = f"/conversations/{quote(conversation_id, safe='')}/passControl"
        await self._json(
            "POST", path, json={"switchboardIntegration": target, "metadata": dict(metadata)}
        )

    async def aclose(self) -> None:
        await self._api.aclose()
