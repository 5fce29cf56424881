"""The Intercom REST API (version 2.14) as typed calls on the shared HTTP core.

Every call goes through ``connectors.base.http.ApiClient``: budgeted by a ``RateBudget`` (Intercom
enforces its per-minute limit in 10-second windows, so the budget is a 10-second window of a
sixth of the minute's limit), classified by the one classifier below, and counted. Errors leave
as Deskstream errors, named by what the caller does next:

    429 rate_limit_exceeded     RateLimitedError, wait until X-RateLimit-Reset (or Retry-After)
    5xx, 408, timeouts          RetriableAPIError
    409 conflict                ConflictError (a FatalAPIError the sink resolves by a lookup)
    404                         NotFoundError (a FatalAPIError; lookups turn it into None)
    other 4xx                   FatalAPIError, with a redacted message saying what to do
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from connectors.base.http import ApiClient, platform_http, redact, retry_after_seconds
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.settings import ConnectorSettings
from connectors.intercom import models as ic
from schemas.errors import (
    ConfigurationError,
    FatalAPIError,
    RateLimitedError,
    RetriableAPIError,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "ConflictError",
    "IntercomClient",
    "NotFoundError",
    "SearchPage",
    "budget_for",
    "classify",
    "rate_headers",
    "window_limit",
]

DEFAULT_BASE_URL = "https://api.intercom.io"
API_VERSION = "2.14"
#: private apps: 10,000 requests per minute per app
DEFAULT_PER_MINUTE = 10_000
WINDOW_S = 10.0
#: the longest wait a 429 can ask for before we distrust our clock (Intercom's windows are 10 s)
_MAX_RESET_WAIT_S = 60.0
_TAG_CACHE_TTL_S = 300.0
#: Intercom's search accepts at most 15 filters per group
_MAX_FILTERS = 15

Clock = Callable[[], float]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ConflictError(FatalAPIError):
    """409: the record exists (Intercom names it in the message); ``existing_id`` when it did."""

    def __init__(self, message: str, *, existing_id: str | None) -> None:
        super().__init__(message, status=409)
        self.existing_id = existing_id


class NotFoundError(FatalAPIError):
    """404: the record does not exist (deleted, or a wrong id)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


# -- the classifier ---------------------------------------------------------------------------

_ADVICE = {
    400: "Intercom refused the request as invalid; fix the mapping or the data it names",
    401: "the access token is invalid or revoked; update the connector's api_token",
    403: "the app lacks a permission or the plan excludes this API; grant it in the Developer Hub",
    404: "the record does not exist in Intercom (deleted or wrong id); nothing to retry",
    409: "the record already exists; the sink looks it up instead of creating it",
    413: "the request is too large for Intercom; shorten the message or its attachments",
    422: "Intercom could not process the request; fix the data it names",
}
_CONFLICT_ID = re.compile(r"\bid=([A-Za-z0-9_-]+)")


def _error_detail(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from an ``error.list`` body, best effort."""
    try:
        body = response.json()
        error = body["errors"][0]
        return str(error.get("code") or ""), str(error.get("message") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "", response.text[:200]


def _reset_wait(response: httpx.Response, now: Clock) -> float:
    reset = response.headers.get("x-ratelimit-reset")
    try:
        wait = float(reset) - now() if reset is not None else None
    except ValueError:
        wait = None
    if wait is not None and 0 < wait <= _MAX_RESET_WAIT_S:
        return wait
    # A reset in the past or far ahead means our clock disagrees with Intercom's; without a
    # Retry-After, one whole window is the wait that certainly reaches a fresh one.
    return retry_after_seconds(response, default=WINDOW_S)


def classify(response: httpx.Response, *, now: Clock = time.time) -> None:
    """The one response classifier: return for success, raise what the caller should do."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_detail(response)
    request = response.request
    what = f"intercom {request.method} {request.url.path} answered {status}"
    if code:
        what += f" {code}"
    if message:
        what += f": {message}"
    if status == 429:
        wait = _reset_wait(response, now)
        raise RateLimitedError(redact(f"{what}; waiting {wait:.1f} s"), retry_after=wait)
    if status >= 500 or status == 408:
        raise RetriableAPIError(redact(f"{what}; will retry"), status=status)
    advice = _ADVICE.get(status, "retrying will not help; fix the request")
    text = redact(f"{what}; {advice}")
    if status == 409:
        found = _CONFLICT_ID.search(message)
        raise ConflictError(text, existing_id=found.group(1) if found else None)
    if status == 404:
        raise NotFoundError(text)
    raise FatalAPIError(text, status=status)


def rate_headers(response: httpx.Response, *, now: Clock = time.time) -> RateHeaders:
    """``X-RateLimit-Limit`` (per 10-second window), ``-Remaining``, ``-Reset`` (Unix time)."""
    limit, remaining, reset = (
        _number(response, f"x-ratelimit-{name}") for name in ("limit", "remaining", "reset")
    )
    return RateHeaders(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_after_s=max(0.0, reset - now()) if reset is not None else None,
    )


def _number(response: httpx.Response, header: str) -> float | None:
    try:
        return float(response.headers[header])
    except (KeyError, ValueError):
        return None


def budget_for(settings: ConnectorSettings, *, clock: Clock = time.monotonic) -> RateBudget:
    """A sixth of the minute's limit per 10-second window, the unit Intercom counts in and the
    one its ``X-RateLimit-Limit`` header reports (so header corrections stay in one unit)."""
    return RateBudget(window_limit(settings), WINDOW_S, clock=clock)


def window_limit(settings: ConnectorSettings) -> int:
    """Calls per 10-second window: a sixth of the minute's limit."""
    return max(1, (settings.rate_limit_per_minute or DEFAULT_PER_MINUTE) // 6)


# -- the client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of a search: raw records, the next page's cursor, Intercom's total count."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


@functools.cache
def _list_of(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _read(parse: Callable[[], T], method: str, url: str) -> T:
    """Translate a body this connector cannot read into a FatalAPIError (no pydantic error
    leaves ``connectors/``)."""
    try:
        return parse()
    except ValidationError as exc:
        raise FatalAPIError(
            f"intercom {method} {url.split('?', 1)[0]} answered a shape this connector cannot "
            f"read ({exc.error_count()} problems); check the Intercom-Version it is pinned to",
        ) from exc


class IntercomClient(ApiClient):
    """Typed Intercom calls. ``token`` is asked for at every call, so a rotated token file
    applies without a restart."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: Callable[[], SecretStr | None],
        budget: RateBudget,
        now: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        super().__init__(
            http,
            platform="intercom",
            budget=budget,
            classify=functools.partial(classify, now=now),
            rate_headers=functools.partial(rate_headers, now=now),
        )
        self._token = token
        self._monotonic = monotonic
        self._tag_ids: dict[str, str] = {}
        self._tags_loaded_at: float | None = None

    @classmethod
    def from_settings(
        cls,
        settings: ConnectorSettings,
        *,
        http: httpx.AsyncClient | None = None,
        now: Clock = time.time,
        budget: RateBudget | None = None,
    ) -> IntercomClient:
        http = http or platform_http(
            httpx.Timeout(15.0, connect=5.0), base_url=settings.api_base_url or DEFAULT_BASE_URL
        )
        return cls(http, token=settings.token, budget=budget or budget_for(settings), now=now)

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        token = self._token()
        if token is None:
            raise ConfigurationError(
                "the Intercom connector has no api_token; set its API_TOKEN_FILE (or API_TOKEN) "
                "to the app's access token"
            )
        return {
            "Authorization": f"Bearer {token.get_secret_value()}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        }

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return await super().request(method, url, headers=headers, **kwargs)

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:  # not JSON, or not UTF-8
            raise RetriableAPIError(
                f"intercom {method} {url.split('?', 1)[0]} answered {response.status_code} "
                "with a body that is not JSON; will retry",
                status=response.status_code,
            ) from exc

    async def _model(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        data = await self._json(method, url, **kwargs)
        return _read(lambda: model.model_validate(data), method, url)

    async def _list(
        self, model: type[M], key: str, method: str, url: str, **kwargs: Any
    ) -> list[M]:
        """The ``key`` array of a list answer (``data``, ``admins``, ``conversations``)."""
        data = await self._json(method, url, **kwargs)
        items = data.get(key, []) if isinstance(data, dict) else None
        return _read(lambda: _list_of(model).validate_python(items), method, url)

    # -- workspace --------------------------------------------------------------------------

    async def me(self) -> ic.Admin:
        return await self._model(ic.Admin, "GET", "/me")

    async def admins(self) -> list[ic.Admin]:
        return await self._list(ic.Admin, "admins", "GET", "/admins")

    async def data_attributes(self, model: str | None = None) -> list[ic.DataAttribute]:
        params = {"model": model} if model else None
        return await self._list(ic.DataAttribute, "data", "GET", "/data_attributes", params=params)

    # -- contacts ---------------------------------------------------------------------------

    async def get_contact(self, contact_id: str) -> ic.Contact:
        return await self._model(ic.Contact, "GET", f"/contacts/{contact_id}")

    async def find_contact_by_external_id(self, external_id: str) -> ic.Contact | None:
        path = f"/contacts/find_by_external_id/{quote(external_id, safe='')}"
        try:
            return await self._model(ic.Contact, "GET", path)
        except NotFoundError:
            return None

    async def search_contacts_by_email(self, emails: Sequence[str]) -> list[ic.Contact]:
        """Contacts whose email is any of ``emails``: one search per 15 addresses (an OR
        group), not one call per address."""
        found: list[ic.Contact] = []
        unique = list(dict.fromkeys(e.strip().lower() for e in emails if e.strip()))
        for start in range(0, len(unique), _MAX_FILTERS):
            filters = [
                {"field": "email", "operator": "=", "value": email}
                for email in unique[start : start + _MAX_FILTERS]
            ]
            query = filters[0] if len(filters) == 1 else {"operator": "OR", "value": filters}
            body = {"query": query, "pagination": {"per_page": 50}}
            found += await self._list(ic.Contact, "data", "POST", "/contacts/search", json=body)
        return found

    async def create_contact(self, fields: Mapping[str, Any]) -> ic.Contact:
        return await self._model(ic.Contact, "POST", "/contacts", json=dict(fields))

    async def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> ic.Contact:
        return await self._model(ic.Contact, "PUT", f"/contacts/{contact_id}", json=dict(fields))

    # -- conversations ----------------------------------------------------------------------

    async def get_conversation(self, conversation_id: str) -> ic.Conversation:
        """The conversation with its (up to 500 most recent) parts, bodies as HTML."""
        return await self._model(ic.Conversation, "GET", f"/conversations/{conversation_id}")

    async def conversation_json(self, conversation_id: str) -> dict[str, Any]:
        """The conversation exactly as Intercom answers it (a poll stores it as its body)."""
        data = await self._json("GET", f"/conversations/{quote(conversation_id, safe='')}")
        if not isinstance(data, dict) or not data.get("id"):
            raise FatalAPIError(
                f"intercom GET /conversations/{conversation_id} answered without a conversation; "
                "check the Intercom-Version it is pinned to"
            )
        return data

    async def search_page(
        self,
        model: str,
        query: Mapping[str, Any],
        *,
        per_page: int,
        starting_after: str | None = None,
    ) -> SearchPage:
        """One page of ``POST /<model>/search`` (``contacts`` or ``conversations``): the raw
        records, the cursor of the next page (None on the last) and the total."""
        pagination: dict[str, Any] = {"per_page": per_page}
        if starting_after:
            pagination["starting_after"] = starting_after
        body = {"query": dict(query), "pagination": pagination}
        data = await self._json("POST", f"/{model}/search", json=body)
        key = "data" if model == "contacts" else model
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise FatalAPIError(
                f"intercom POST /{model}/search answered without a {key} list; check the "
                "Intercom-Version it is pinned to"
            )
        pages = data.get("pages") if isinstance(data.get("pages"), dict) else {}
        following = pages.get("next") if isinstance(pages, dict) else None
        cursor = following.get("starting_after") if isinstance(following, dict) else None
        total = data.get("total_count")
        return SearchPage(
            items=[item for item in items if isinstance(item, dict)],
            next_cursor=cursor if isinstance(cursor, str) and cursor else None,
            total=total if isinstance(total, int) else None,
        )

    async def search_conversations(
        self, query: Mapping[str, Any], *, per_page: int = 50
    ) -> list[ic.Conversation]:
        body = {"query": dict(query), "pagination": {"per_page": per_page}}
        return await self._list(
            ic.Conversation, "conversations", "POST", "/conversations/search", json=body
        )

    async def reply_as_admin(
        self,
        conversation_id: str,
        *,
        admin_id: str,
        body: str,
        note: bool,
        attachment_urls: Sequence[str] = (),
    ) -> ic.Conversation:
        """A public comment or, with ``note``, an internal note; Intercom answers with the
        conversation and its parts."""
        payload: dict[str, Any] = {
            "message_type": "note" if note else "comment",
            "type": "admin",
            "admin_id": admin_id,
            "body": body,
        }
        if attachment_urls:
            payload["attachment_urls"] = list(attachment_urls)
        path = f"/conversations/{conversation_id}/reply"
        return await self._model(ic.Conversation, "POST", path, json=payload)

    async def manage(
        self, conversation_id: str, message_type: str, *, admin_id: str, **fields: Any
    ) -> ic.Conversation:
        """``POST /conversations/{id}/parts``: close, open, snoozed (``snoozed_until``),
        assignment (``assignee_id``)."""
        payload = {"message_type": message_type, "type": "admin", "admin_id": admin_id, **fields}
        path = f"/conversations/{conversation_id}/parts"
        return await self._model(ic.Conversation, "POST", path, json=payload)

    async def close(self, conversation_id: str, *, admin_id: str) -> ic.Conversation:
        return await self.manage(conversation_id, "close", admin_id=admin_id)

    async def reopen(self, conversation_id: str, *, admin_id: str) -> ic.Conversation:
        return await self.manage(conversation_id, "open", admin_id=admin_id)

    async def snooze(self, conversation_id: str, *, admin_id: str, until: int) -> ic.Conversation:
        return await self.manage(conversation_id, "snoozed", admin_id=admin_id, snoozed_until=until)

    async def assign(
        self, conversation_id: str, *, admin_id: str, assignee_id: str | None
    ) -> ic.Conversation:
        """Assign to an admin (``assign_conversation_request``); None unassigns (``"0"``)."""
        return await self.manage(
            conversation_id, "assignment", admin_id=admin_id, assignee_id=assignee_id or "0"
        )

    async def update_conversation(
        self, conversation_id: str, fields: Mapping[str, Any]
    ) -> ic.Conversation:
        """``PUT /conversations/{id}``: title and custom attributes."""
        path = f"/conversations/{conversation_id}"
        return await self._model(ic.Conversation, "PUT", path, json=dict(fields))

    # -- tags -------------------------------------------------------------------------------

    async def tags(self) -> list[ic.Tag]:
        tags = await self._list(ic.Tag, "data", "GET", "/tags")
        self._tag_ids = {t.name: t.id for t in tags if t.name}
        self._tags_loaded_at = self._monotonic()
        return tags

    async def create_tag(self, name: str) -> ic.Tag:
        """Create-or-get: Intercom answers with the existing tag when the name is taken."""
        tag = await self._model(ic.Tag, "POST", "/tags", json={"name": name})
        self._tag_ids[name] = tag.id
        return tag

    async def tag_ids(self, names: Sequence[str], *, create: bool) -> dict[str, str]:
        """Ids for tag names from a cached list (re-read on a miss, at most every five
        minutes); names still unknown are created when ``create``, else left out."""
        wanted = list(dict.fromkeys(names))
        stale = self._tags_loaded_at is None or (
            self._monotonic() - self._tags_loaded_at > _TAG_CACHE_TTL_S
        )
        if stale and any(name not in self._tag_ids for name in wanted):
            await self.tags()
        ids = {name: self._tag_ids[name] for name in wanted if name in self._tag_ids}
        if create:
            for name in wanted:
                if name not in ids:
                    ids[name] = (await self.create_tag(name)).id
        return ids

    async def add_tag(self, conversation_id: str, *, tag_id: str, admin_id: str) -> ic.Tag:
        path = f"/conversations/{conversation_id}/tags"
        return await self._model(ic.Tag, "POST", path, json={"id": tag_id, "admin_id": admin_id})

    async def remove_tag(self, conversation_id: str, *, tag_id: str, admin_id: str) -> bool:
        """False when the tag was not on the conversation (already removed: nothing to do)."""
        try:
            await self.request(
                "DELETE",
                f"/conversations/{conversation_id}/tags/{tag_id}",
                json={"admin_id": admin_id},
            )
        except NotFoundError:
            return False
        return True

    # -- messages ---------------------------------------------------------------------------

    async def send_admin_message(
        self, *, admin_id: str, to: ic.Contact, body: str, open_conversation: bool = True
    ) -> ic.AdminMessage:
        """An admin-initiated in-app message to one contact. With ``open_conversation`` the
        conversation opens in the inbox at once and its id comes back."""
        payload = {
            "message_type": "in_app",
            "body": body,
            # The spec types the admin id as an integer; Intercom's admin ids are digits.
            "from": {"type": "admin", "id": int(admin_id) if admin_id.isdigit() else admin_id},
            "to": {"type": to.role or "user", "id": to.id},
            "create_conversation_without_contact_reply": open_conversation,
        }
        return await self._model(ic.AdminMessage, "POST", "/messages", json=payload)
