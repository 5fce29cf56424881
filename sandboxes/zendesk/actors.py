"""The people who use Zendesk Support, acting through its public REST API and nothing else.

* :class:`ZendeskAgent` is a human agent signed in with **their own** credential (an OAuth
  token issued to them, or their email with an account API token), never the integration
  user's: every write carries the agent as ``actor_id`` and comment author, which is how
  Deskstream tells a person's change from its own. Public replies, internal notes,
  solve/reopen, tags, priority, finding a ticket by ``external_id`` (an escalation Deskstream
  mirrored), adding a customer's profile, correcting its name and recording a second email address.
* :class:`ZendeskRequester` is a customer opening a ticket by email the way a web form's
  backend does: ``POST /api/v2/tickets`` with ``requester: {name, email}`` (Zendesk creates the
  end user when the address is new) and an ``Idempotency-Key``, so a retried create never
  opens a second ticket. Its follow-ups are public comments authored by the requester, as an
  email reply is.

The injected :class:`httpx.AsyncClient` carries base URL and credential
(:func:`zendesk_http`). Failures surface as :class:`~schemas.errors.RetriableAPIError` (429, 5xx,
transport) or :class:`~schemas.errors.FatalAPIError` (other 4xx) with redacted messages.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from sandboxes.base.people import call_json
from schemas.errors import FatalAPIError

__all__ = [
    "ZendeskAgent",
    "ZendeskRequester",
    "api_token_auth",
    "oauth_auth",
    "zendesk_http",
]

Sleep = Callable[[float], Awaitable[None]]


def oauth_auth(token: str) -> str:
    """``Authorization`` for an OAuth access token."""
    return f"Bearer {token}"


def api_token_auth(email: str, api_token: str) -> str:
    """``Authorization`` for ``{email}/token:{api_token}``: the account's API token used as
    the agent with that email."""
    raw = f"{email}/token:{api_token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def zendesk_http(
    base_url: str,
    authorization: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": authorization, "Accept": "application/json"},
        transport=transport,
        timeout=timeout,
    )


_call = functools.partial(call_json, platform="zendesk")


def _comment_id(answer: dict[str, Any]) -> int | None:
    """The id of the comment a create/update added, from the audit it returns."""
    for event in answer.get("audit", {}).get("events", []):
        if event.get("type") == "Comment":
            return int(event["id"])
    return None


class ZendeskAgent:
    """A human agent; ``http`` must carry this agent's own credential."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._user_id: int | None = None

    async def user_id(self) -> int:
        """Who this credential signs in as (``GET /api/v2/users/me``)."""
        if self._user_id is None:
            me = await _call(self.http, "GET", "/api/v2/users/me", "me")
            self._user_id = int(me["user"]["id"])
        return self._user_id

    async def update(self, ticket_id: int, change: dict[str, Any]) -> dict[str, Any]:
        """``PUT /api/v2/tickets/{id}``; returns ``{"ticket", "audit"}``."""
        path = f"/api/v2/tickets/{ticket_id}"
        return await _call(self.http, "PUT", path, "ticket update", {"ticket": change})

    async def reply(self, ticket_id: int, body: str) -> int | None:
        """A public reply; returns the comment id."""
        answer = await self.update(ticket_id, {"comment": {"body": body, "public": True}})
        return _comment_id(answer)

    async def note(self, ticket_id: int, body: str) -> int | None:
        """An internal note (``public: false``); returns the comment id."""
        answer = await self.update(ticket_id, {"comment": {"body": body, "public": False}})
        return _comment_id(answer)

    async def solve(self, ticket_id: int, body: str | None = None) -> None:
        """Mark solved, with a last public reply when ``body`` is given."""
        change: dict[str, Any] = {"status": "solved"}
        if body:
            change["comment"] = {"body": body, "public": True}
        await self.update(ticket_id, change)

    async def reopen(self, ticket_id: int) -> None:
        await self.update(ticket_id, {"status": "open"})

    async def assign(self, ticket_id: int, assignee_id: int | None) -> None:
        """Assign the ticket to an agent (None: unassign)."""
        await self.update(ticket_id, {"assignee_id": assignee_id})

    async def agent_id(self, email: str) -> int:
        """The id of the agent with ``email`` (``GET /api/v2/users/search``)."""
        query = urlencode({"query": f"email:{email}"})
        found = await _call(self.http, "GET", f"/api/v2/users/search?{query}", "user search")
        agents = [u for u in found.get("users", []) if u.get("role") in ("agent", "admin")]
        if not agents:
            raise FatalAPIError(f"zendesk has no agent with the email {email}")
        return int(agents[0]["id"])

    async def tag(
        self, ticket_id: int, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[str]:
        """Add and remove tags without touching the others; returns the ticket's tags."""
        change: dict[str, Any] = {}
        if add:
            change["additional_tags"] = list(add)
        if remove:
            change["remove_tags"] = list(remove)
        answer = await self.update(ticket_id, change)
        return [str(t) for t in answer["ticket"].get("tags", [])]

    async def set_priority(self, ticket_id: int, priority: str) -> None:
        """``low``, ``normal``, ``high`` or ``urgent``."""
        await self.update(ticket_id, {"priority": priority})

    async def ticket(self, ticket_id: int) -> dict[str, Any]:
        answer = await _call(self.http, "GET", f"/api/v2/tickets/{ticket_id}", "ticket show")
        ticket: dict[str, Any] = answer["ticket"]
        return ticket

    async def find_ticket(self, external_id: str) -> dict[str, Any] | None:
        """The live ticket whose ``external_id`` is ``external_id``, if any."""
        path = f"/api/v2/tickets?external_id={external_id}"
        tickets = (await _call(self.http, "GET", path, "ticket lookup")).get("tickets", [])
        return dict(tickets[0]) if tickets else None

    async def wait_for_ticket(
        self,
        external_id: str,
        *,
        patience_s: float,
        first_poll_s: float = 0.25,
        max_poll_s: float = 4.0,
        sleep: Sleep = asyncio.sleep,
    ) -> dict[str, Any] | None:
        """Look for the ticket until it appears or ``patience_s`` seconds pass, as an agent
        refreshing a view would; polls back off so waiting costs little of the budget."""
        deadline = time.monotonic() + patience_s
        poll = first_poll_s
        while True:
            ticket = await self.find_ticket(external_id)
            if ticket is not None:
                return ticket
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await sleep(min(poll, left))
            poll = min(max_poll_s, poll * 2)

    async def add_customer(self, *, name: str, email: str) -> int:
        """Add an end user's profile by hand (``POST /api/v2/users``, a plain create: Zendesk
        refuses it with 422 when the email already belongs to someone); returns the id."""
        body = {"user": {"name": name, "email": email, "role": "end-user"}}
        user = await _call(self.http, "POST", "/api/v2/users", "user create", body)
        return int(user["user"]["id"])

    async def rename_customer(self, user_id: int, name: str) -> None:
        """Correct a customer's name on their profile (``PUT /api/v2/users/{id}``)."""
        body = {"user": {"name": name}}
        await _call(self.http, "PUT", f"/api/v2/users/{user_id}", "user update", body)

    async def record_secondary_email(self, *, name: str, email: str, secondary: str) -> int:
        """Put ``secondary`` on the profile of the customer with primary ``email`` (created
        when missing); returns the user id. An address already recorded is fine."""
        body = {"user": {"name": name, "email": email}}
        user = await _call(self.http, "POST", "/api/v2/users/create_or_update", "user upsert", body)
        user_id = int(user["user"]["id"])
        identity = {"identity": {"type": "email", "value": secondary}}
        path = f"/api/v2/users/{user_id}/identities"
        try:
            await _call(self.http, "POST", path, "identity create", identity)
        except FatalAPIError as exc:
            if exc.status != 422:  # 422: already this user's (or taken); nothing to add
                raise
        return user_id


class ZendeskRequester:
    """A customer writing in by email or web form; ``http`` is the form backend's client."""

    def __init__(self, http: httpx.AsyncClient, *, name: str, email: str) -> None:
        self.http = http
        self.name = name
        self.email = email
        self.user_id: int | None = None

    async def open_ticket(
        self, subject: str, body: str, *, idempotency_key: str | None = None
    ) -> int:
        """Open a ticket as this requester; returns the ticket id."""
        ticket = {
            "subject": subject,
            "comment": {"body": body},
            "requester": {"name": self.name, "email": self.email},
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        answer = await _call(
            self.http,
            "POST",
            "/api/v2/tickets",
            "ticket create",
            {"ticket": ticket},
            headers=headers,
        )
        self.user_id = int(answer["ticket"]["requester_id"])
        return int(answer["ticket"]["id"])

    async def follow_up(self, ticket_id: int, body: str) -> int | None:
        """A public comment authored by the requester (an email reply); returns its id."""
        if self.user_id is None:
            raise FatalAPIError("zendesk follow-up before the requester opened a ticket")
        comment = {"body": body, "public": True, "author_id": self.user_id}
        path = f"/api/v2/tickets/{ticket_id}"
        answer = await _call(
            self.http, "PUT", path, "requester follow-up", {"ticket": {"comment": comment}}
        )
        return _comment_id(answer)
