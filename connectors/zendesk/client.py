"""The Zendesk Support REST client: auth, the one response classifier, rate headers, and
typed calls for what the sink and ``deskstream config check`` need.

Errors, by what the caller does next (``classify``):

    429 (account budget)        RateLimitedError(retry_after)   wait, pause the partition
    429 (30 updates / 10 min    RateLimitedError(retry_after,   wait; the account budget is
         per user per ticket)     scope="record")               not drained (ApiClient)
    409 UpdateConflict          UpdateConflictError             ``safe_update`` refused a stale
                                (a RetriableAPIError)           ``updated_stamp``: the sink
                                                                re-reads and decides again
    409 (other)                 RetriableAPIError               back off and retry
    400 IdempotentRequestError  RetriableAPIError               a concurrent attempt created the
                                                                ticket: the retry finds it
    5xx, timeouts, resets       RetriableAPIError               back off and retry
    other 4xx                   FatalAPIError                   dead-letter, with what to fix

Auth is read from the connector's settings on every request (a token file can rotate without
a restart): ``{api_user}/token:{api_token}`` basic auth, or ``Bearer <api_token>`` (an OAuth
access token) when no ``api_user`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from connectors.base.http import ApiClient, current_count, redact, retry_after_seconds
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.settings import ConnectorSettings
from connectors.zendesk.models import (
    Comment,
    Identity,
    Ticket,
    TicketField,
    TicketWrite,
    Upload,
    User,
)
from schemas.errors import ConfigurationError, FatalAPIError, RateLimitedError, RetriableAPIError

__all__ = [
    "DEFAULT_RATE_LIMIT_PER_MINUTE",
    "MAX_UPLOAD_BYTES",
    "TICKET_UPDATE_LIMIT_MARKER",
    "UPDATE_CONFLICT",
    "DuplicateUserError",
    "ExportPage",
    "TicketEventsPage",
    "UpdateConflictError",
    "ZendeskAuth",
    "ZendeskClient",
    "classify",
    "error_message",
    "rate_headers",
]

logger = logging.getLogger(__name__)

#: Enterprise's published limit; a plan with another limit sets ``rate_limit_per_minute``.
DEFAULT_RATE_LIMIT_PER_MINUTE = 700
#: The per-ticket update 429 answers in plain text starting like this (Zendesk's docs).
TICKET_UPDATE_LIMIT_MARKER = "rate limit for ticket updates exceeded"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # Zendesk's attachment limit
#: The ``error`` of the 409 a ``safe_update`` with an outdated ``updated_stamp`` answers.
UPDATE_CONFLICT = "UpdateConflict"
_PAGE_SIZE = 100
M = TypeVar("M", bound=BaseModel)

_ADVICE = {
    400: "the request is malformed: a Deskstream bug or a mapping value Zendesk cannot take; "
    "fix it, then `deskstream dlq retry` the command",
    401: "Zendesk refused the credentials: check the connector's api_user and api_token "
    "(or OAuth token); an OAuth token may have been revoked",
    403: "the credentials lack permission: the integration user must be an admin, and an OAuth "
    "token needs read, tickets:write and users:write",
    404: "the record does not exist (deleted or merged in Zendesk?); the command cannot apply",
    413: "the file is over Zendesk's 50 MB attachment limit",
    422: "Zendesk refused the values; fix the mapping (field ids, allowed values) in the rules "
    "file, then `deskstream dlq retry` the command",
}


class UpdateConflictError(RetriableAPIError):
    """409 UpdateConflict: the ticket changed after the ``updated_stamp`` a ``safe_update``
    sent. Not for a blind retry: the caller re-reads the ticket and decides again. (A
    ``RetriableAPIError`` so that, should one ever escape, the whole command is retried,
    which re-reads, rather than dead-lettered.)"""


class DuplicateUserError(FatalAPIError):
    """422 ``DuplicateValue``: on Create User, someone holds the new user's email or external
    id already (Create User is no upsert). The caller looks the user up; elsewhere it is the
    ``FatalAPIError`` it always was."""


def _duplicate_user(response: httpx.Response) -> bool:
    """Whether a 422 names a value another record holds (Zendesk:
    ``details.email[].error == "DuplicateValue"``)."""
    try:
        body = response.json()
    except ValueError:
        return False
    details = body.get("details") if isinstance(body, dict) else None
    if not isinstance(details, dict):
        return False
    # Any field: where Zendesk files a taken secondary email is not documented.
    problems = [p for value in details.values() for p in _as_list(value)]
    return any(isinstance(p, dict) and p.get("error") == "DuplicateValue" for p in problems)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _what(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:
        return "zendesk call"
    # Query strings can carry emails (user search): the path only.
    return f"zendesk {request.method} {request.url.path}"


def _error_body(response: httpx.Response) -> tuple[str, str]:
    """Zendesk's ``error`` code and a one-line description (with 422 details)."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text.strip()[:200]
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    code = error if isinstance(error, str) else ""
    parts = [str(body.get("description") or body.get("error_description") or "")]
    details = body.get("details")
    if isinstance(details, dict):
        for field, problems in details.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("description") if isinstance(problem, dict) else problem
                parts.append(f"{field}: {text}")
    return code, "; ".join(p for p in parts if p)


def error_message(response: httpx.Response) -> str:
    """The one message builder: what happened and what to do next, without secrets or PII."""
    code, description = _error_body(response)
    status = response.status_code
    advice = _ADVICE.get(status, "retrying will not help; see Zendesk's answer")
    answer = f"{status} {code}".strip()
    return redact(f"{_what(response)} answered {answer} ({description}): {advice}")


def _is_ticket_update_limit(response: httpx.Response) -> bool:
    if response.status_code != 429:
        return False
    return response.text.strip().lower().startswith(TICKET_UPDATE_LIMIT_MARKER)


def classify(response: httpx.Response) -> None:
    """Zendesk's one response classifier: return for success, raise what the caller needs."""
    status = response.status_code
    if status < 400:
        return
    what = _what(response)
    if status == 429:
        wait = retry_after_seconds(response, default=60.0)
        if _is_ticket_update_limit(response):
            raise RateLimitedError(
                f"{what} answered 429: this ticket took its 30 updates in 10 minutes (per user, "
                f"per ticket); waiting {wait:.0f} s before writing it again. Often a sync loop: "
                "check that echoes on this ticket are suppressed",
                retry_after=wait,
                scope="record",
            )
        raise RateLimitedError(
            f"{what} answered 429: the account's API budget is spent; waiting {wait:.0f} s "
            "(Retry-After). If this repeats, set rate_limit_per_minute to the plan's limit",
            retry_after=wait,
        )
    code, description = _error_body(response)
    if status == 409 and code == UPDATE_CONFLICT:
        raise UpdateConflictError(
            f"{what} answered 409 {UPDATE_CONFLICT}: the ticket changed after the updated_stamp "
            "sent with safe_update; re-read it and decide again",
            status=status,
        )
    if status == 409:
        raise RetriableAPIError(
            redact(f"{what} answered 409 {code} ({description}): a concurrent update; will retry"),
            status=status,
        )
    if status >= 500:
        raise RetriableAPIError(
            redact(f"{what} answered {status} ({description}): Zendesk is failing; will retry"),
            status=status,
        )
    if status == 400 and code == "IdempotentRequestError":
        raise RetriableAPIError(
            f"{what} answered 400 IdempotentRequestError: an earlier attempt of this command "
            "used the key with other upload tokens; the retry finds its ticket by external_id",
            status=status,
        )
    if status == 422 and _duplicate_user(response):
        raise DuplicateUserError(error_message(response), status=status)
    raise FatalAPIError(error_message(response), status=status)


def _int_header(response: httpx.Response, *names: str) -> int | None:
    values = []
    for name in names:
        raw = response.headers.get(name)
        if raw is None:
            continue
        try:
            values.append(int(float(raw)))
        except ValueError:
            continue
    return min(values) if values else None


def rate_headers(response: httpx.Response) -> RateHeaders:
    """``X-Rate-Limit``/``X-Rate-Limit-Remaining`` (account) and ``ratelimit-*`` (Ticketing
    API): when both are sent, the tighter one governs."""
    reset: float | None = None
    raw_reset = response.headers.get("ratelimit-reset")
    if raw_reset is not None:
        try:
            reset = max(0.0, float(raw_reset))
        except ValueError:
            reset = None
    return RateHeaders(
        limit=_int_header(response, "x-rate-limit", "ratelimit-limit"),
        remaining=_int_header(response, "x-rate-limit-remaining", "ratelimit-remaining"),
        reset_after_s=reset,
    )


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of the cursor-based incremental ticket export."""

    #: the tickets as Zendesk sent them (each becomes a raw delivery's body, untouched)
    tickets: list[dict[str, Any]]
    after_cursor: str
    end_of_stream: bool


@dataclass(frozen=True, slots=True)
class TicketEventsPage:
    """One page of the time-based incremental ticket event export."""

    #: the ticket events (audits) as Zendesk sent them
    events: list[dict[str, Any]]
    #: the time of the last event returned: where the next page starts (inclusive)
    end_time: int
    end_of_stream: bool


class ZendeskAuth(httpx.Auth):
    """Sets ``Authorization`` per request, from settings read at that moment."""

    def __init__(self, settings: ConnectorSettings) -> None:
        self._settings = settings

    def header(self) -> str:
        token = self._settings.token()
        if token is None:
            raise ConfigurationError(
                "the Zendesk connector has no api_token; set DESKSTREAM_CONNECTORS__<id>__"
                "API_TOKEN_FILE (or __API_TOKEN), plus __API_USER for an API token"
            )
        if self._settings.api_user:
            raw = f"{self._settings.api_user}/token:{token.get_secret_value()}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        return f"Bearer {token.get_secret_value()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header()
        yield request


class ZendeskClient(ApiClient):
    """Typed Zendesk calls on an injected ``httpx.AsyncClient``; every call is budgeted,
    counted in ``calls`` and classified. ``last_status`` is the last answer's HTTP status."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        settings: ConnectorSettings,
        budget: RateBudget | None = None,
    ) -> None:
        if not settings.api_base_url:
            raise ConfigurationError(
                "the Zendesk connector has no api_base_url; set it to "
                "https://<subdomain>.zendesk.com (or a sandbox URL)"
            )
        self._auth = ZendeskAuth(settings)
        self._auth.header()  # fail at start-up, not on the first command
        limit = settings.rate_limit_per_minute or DEFAULT_RATE_LIMIT_PER_MINUTE
        super().__init__(
            http,
            platform="zendesk",
            budget=budget or RateBudget(limit, 60.0),
            classify=classify,
            rate_headers=rate_headers,
        )
        self._base = settings.api_base_url.rstrip("/")
        self._last_status: int | None = None

    @property
    def last_status(self) -> int | None:
        """The last answer's status: this command's when it is counting (commands of
        several partitions run at once), else this client's."""
        count = current_count()
        return count.last_status if count is not None else self._last_status

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.startswith("/"):
            url = self._base + url
        kwargs.setdefault("auth", self._auth)
        response = await super().request(method, url, **kwargs)
        self._last_status = response.status_code
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RetriableAPIError(
                f"zendesk {method} {path.split('?')[0]} answered {response.status_code} without "
                "a JSON object (a proxy page?); will retry",
                status=response.status_code,
            )
        return body

    @staticmethod
    def _parse(model: type[M], data: Any, what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RetriableAPIError(
                f"zendesk answered an unexpected {what} ({exc.error_count()} problems, first: "
                f"{redact(str(exc.errors()[0]['loc']))}); will retry"
            ) from None

    async def _pages(
        self, path: str, key: str, limit: int | None = None, **query: str
    ) -> list[dict[str, Any]]:
        """Cursor pagination: follow ``links.next`` while ``meta.has_more``."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        size = _PAGE_SIZE if limit is None else max(1, min(_PAGE_SIZE, limit))
        params: dict[str, Any] | None = {"page[size]": size, **query}
        while url is not None and (limit is None or len(items) < limit):
            body = await self._json("GET", url, params=params)
            items += [i for i in body.get(key) or [] if isinstance(i, dict)]
            meta, links = body.get("meta") or {}, body.get("links") or {}
            next_url = links.get("next") if meta.get("has_more") else None
            url, params = (str(next_url), None) if next_url and next_url != url else (None, None)
        return items if limit is None else items[:limit]

    # -- account ---------------------------------------------------------------------------

    async def me(self) -> User:
        body = await self._json("GET", "/api/v2/users/me")
        return self._parse(User, body.get("user"), "user")

    async def ticket_fields(self) -> list[TicketField]:
        rows = await self._pages("/api/v2/ticket_fields", "ticket_fields")
        return [self._parse(TicketField, row, "ticket field") for row in rows]

    # -- incremental export ----------------------------------------------------------------

    async def incremental_tickets(
        self, *, cursor: str | None = None, start_time: int | None = None, per_page: int = 1000
    ) -> ExportPage:
        """``GET /api/v2/incremental/tickets/cursor``: from ``cursor``, else from
        ``start_time`` (epoch seconds, older than a minute). Admins only."""
        return await self._cursor_export("tickets", cursor, start_time, per_page)

    async def _cursor_export(
        self, resource: str, cursor: str | None, start_time: int | None, per_page: int
    ) -> ExportPage:
        params: dict[str, Any] = {"per_page": per_page}
        if cursor is not None:
            params["cursor"] = cursor
        elif start_time is not None:
            params["start_time"] = start_time
        else:
            raise ValueError("the incremental export needs a cursor or a start_time")
        body = await self._json("GET", f"/api/v2/incremental/{resource}/cursor", params=params)
        after = body.get("after_cursor")
        if not isinstance(after, str) or not after:
            raise RetriableAPIError(
                f"zendesk answered the incremental {resource} export without an after_cursor "
                "(a proxy page or a changed API?); will read the same page again"
            )
        records = [t for t in body.get(resource) or [] if isinstance(t, dict)]
        return ExportPage(records, after, bool(body.get("end_of_stream")))

    async def incremental_ticket_events(self, *, start_time: int) -> TicketEventsPage:
        """``GET /api/v2/incremental/ticket_events?include=comment_events``: the updates of
        tickets from ``start_time`` (epoch seconds, older than a minute), comments whole."""
        params = {"start_time": start_time, "include": "comment_events"}
        body = await self._json("GET", "/api/v2/incremental/ticket_events", params=params)
        end_time = body.get("end_time")
        if not isinstance(end_time, int) or isinstance(end_time, bool):
            raise RetriableAPIError(
                "zendesk answered the incremental ticket event export without an end_time "
                "(a proxy page or a changed API?); will read the same page again"
            )
        events = [e for e in body.get("ticket_events") or [] if isinstance(e, dict)]
        return TicketEventsPage(events, end_time, bool(body.get("end_of_stream")))

    async def incremental_users(
        self, *, cursor: str | None = None, start_time: int | None = None, per_page: int = 1000
    ) -> ExportPage:
        """``GET /api/v2/incremental/users/cursor``, as ``incremental_tickets`` (the users are
        in ``ExportPage.tickets``' place)."""
        return await self._cursor_export("users", cursor, start_time, per_page)

    async def tickets_json(self, ticket_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``GET /api/v2/tickets/show_many``: the tickets as Zendesk sends them, by id, 100
        per call; a deleted ticket is missing from the answer."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ticket_ids))
        for start in range(0, len(unique), 100):
            ids = ",".join(unique[start : start + 100])
            body = await self._json("GET", "/api/v2/tickets/show_many", params={"ids": ids})
            for ticket in body.get("tickets") or []:
                if isinstance(ticket, dict) and ticket.get("id") is not None:
                    found[str(ticket["id"])] = ticket
        return found

    # -- tickets ---------------------------------------------------------------------------

    async def ticket(self, ticket_id: str) -> Ticket:
        body = await self._json("GET", f"/api/v2/tickets/{ticket_id}")
        return self._parse(Ticket, body.get("ticket"), "ticket")

    async def tickets_by_external_id(self, external_id: str) -> list[Ticket]:
        body = await self._json("GET", "/api/v2/tickets", params={"external_id": external_id})
        return [self._parse(Ticket, t, "ticket") for t in body.get("tickets") or []]

    async def create_ticket(self, ticket: dict[str, Any], *, idempotency_key: str) -> TicketWrite:
        body = await self._json(
            "POST",
            "/api/v2/tickets",
            json={"ticket": ticket},
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._parse(TicketWrite, body, "ticket")

    async def import_ticket(self, ticket: dict[str, Any]) -> Ticket:
        body = await self._json("POST", "/api/v2/imports/tickets", json={"ticket": ticket})
        return self._parse(Ticket, body.get("ticket"), "ticket")

    async def update_ticket(
        self, ticket_id: str, ticket: dict[str, Any], *, updated_stamp: str | None = None
    ) -> TicketWrite:
        """``PUT tickets/{id}``; with ``updated_stamp`` (the ticket's ``updated_at`` as read) a
        ``safe_update``, which raises :class:`UpdateConflictError` when the ticket changed."""
        if updated_stamp is not None:
            ticket = {**ticket, "safe_update": True, "updated_stamp": updated_stamp}
        body = await self._json("PUT", f"/api/v2/tickets/{ticket_id}", json={"ticket": ticket})
        return self._parse(TicketWrite, body, "ticket")

    async def comments(
        self, ticket_id: str, *, limit: int | None = None, newest_first: bool = False
    ) -> list[Comment]:
        path = f"/api/v2/tickets/{ticket_id}/comments"
        order = {"sort": "-created_at"} if newest_first else {}
        rows = await self._pages(path, "comments", limit, **order)
        return [self._parse(Comment, row, "comment") for row in rows]

    async def upload(
        self, data: bytes, *, filename: str, content_type: str, token: str | None = None
    ) -> Upload:
        params = {"filename": filename, **({"token": token} if token else {})}
        body = await self._json(
            "POST",
            "/api/v2/uploads",
            params=params,
            content=data,
            headers={"Content-Type": content_type or "application/octet-stream"},
        )
        return self._parse(Upload, body.get("upload"), "upload")

    async def download(self, url: str, *, name: str, sha256: str | None = None) -> bytes:
        """An attachment from its source platform, to re-upload (never linked). Not a Zendesk
        call: no credentials are sent, the budget is not spent, ``calls`` does not count it."""
        label = redact(name, 80)
        try:
            response = await self._http.get(url, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise RetriableAPIError(
                f"downloading attachment {label!r} failed ({type(exc).__name__}); will retry"
            ) from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetriableAPIError(
                f"the source of attachment {label!r} answered {status}; will retry", status=status
            )
        if status >= 400:
            raise FatalAPIError(
                f"the source of attachment {label!r} answered {status}: the file is gone or its "
                "link expired; re-send the message from the source platform",
                status=status,
            )
        data = response.content
        if len(data) > MAX_UPLOAD_BYTES:
            raise FatalAPIError(f"attachment {label!r} is over Zendesk's 50 MB limit")
        if sha256 and hashlib.sha256(data).hexdigest() != sha256.lower():
            raise FatalAPIError(
                f"attachment {label!r} downloaded with another sha256 than its source reported: "
                "the file changed or the download was corrupted; re-send the message"
            )
        return data

    # -- users -----------------------------------------------------------------------------

    async def user(self, user_id: str) -> User | None:
        """``GET /api/v2/users/{id}``; None when Zendesk has no such user (404)."""
        try:
            body = await self._json("GET", f"/api/v2/users/{user_id}")
        except FatalAPIError as exc:
            if exc.status == 404:
                return None
            raise
        return self._parse(User, body.get("user"), "user")

    async def search_users_by_email(self, email: str) -> list[User]:
        """Every user with ``email`` as any of their email identities."""
        body = await self._json("GET", "/api/v2/users/search", params={"query": f"email:{email}"})
        return [self._parse(User, u, "user") for u in body.get("users") or []]

    async def users_by_external_id(self, external_id: str) -> list[User]:
        body = await self._json("GET", "/api/v2/users/search", params={"external_id": external_id})
        return [self._parse(User, u, "user") for u in body.get("users") or []]

    async def identities(self, user_id: str) -> list[Identity]:
        rows = await self._pages(f"/api/v2/users/{user_id}/identities", "identities")
        return [self._parse(Identity, row, "identity") for row in rows]

    async def add_email_identity(self, user_id: str, email: str) -> Identity:
        body = await self._json(
            "POST",
            f"/api/v2/users/{user_id}/identities",
            json={"identity": {"type": "email", "value": email}},
        )
        return self._parse(Identity, body.get("identity"), "identity")

    async def create_user(self, user: dict[str, Any]) -> User:
        """Create User: ``DuplicateUserError`` when its email or external id is taken."""
        body = await self._json("POST", "/api/v2/users", json={"user": user})
        return self._parse(User, body.get("user"), "user")

    async def create_or_update_user(self, user: dict[str, Any]) -> tuple[User, bool]:
        """Zendesk's upsert by email or external_id: ``(user, created)`` (201 vs 200)."""
        body = await self._json("POST", "/api/v2/users/create_or_update", json={"user": user})
        return self._parse(User, body.get("user"), "user"), self.last_status == 201

    async def update_user(self, user_id: str, user: dict[str, Any]) -> User:
        body = await self._json("PUT", f"/api/v2/users/{user_id}", json={"user": user})
        return self._parse(User, body.get("user"), "user")
