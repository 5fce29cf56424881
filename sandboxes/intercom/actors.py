"""The people who use Intercom, acting through its public REST API (2.14) and nothing else.

* :class:`IntercomCustomer` is a contact: identified by email (found with ``POST
  /contacts/search``, else created), starts a conversation and replies to it, optionally
  with ``attachment_urls``.
* :class:`IntercomAdmin` is a human teammate (never the admin the access token belongs to,
  which is how Deskstream's own writes are recognised): replies, notes, tags and untags by
  tag *name* (creating the tag through ``POST /tags``), closes, opens, snoozes, assigns, and
  sets contact custom attributes such as ``plan`` (creating the data attribute first, since
  Intercom refuses attributes that do not exist).

Each actor works on an injected :class:`httpx.AsyncClient` that already carries the base URL
and the token (:func:`intercom_http` builds one). Retrying is not the actors' job: the
traffic engine gives the client a polite transport. Whatever still fails is raised as
:class:`~schemas.errors.RetriableAPIError` (429, 5xx, transport) or
:class:`~schemas.errors.FatalAPIError` (other 4xx), with a redacted message; no httpx exception
leaves this module.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from sandboxes.base.people import call_json
from schemas.errors import FatalAPIError

__all__ = [
    "INTERCOM_VERSION",
    "IntercomAdmin",
    "IntercomCustomer",
    "find_human_admins",
    "intercom_http",
]

INTERCOM_VERSION = "2.14"

AttributeValue = str | int | float | bool


def intercom_http(
    base_url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    """A client for ``base_url`` authenticated with an access token, on version 2.14."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {token}",
            "Intercom-Version": INTERCOM_VERSION,
            "Accept": "application/json",
        },
        transport=transport,
        timeout=timeout,
    )


_call = functools.partial(call_json, platform="intercom")


def _data_type(value: AttributeValue) -> str:
    # bool before int: True is an int to Python, a boolean to Intercom.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return "float" if isinstance(value, float) else "string"


def _last_part_id(conversation: Mapping[str, Any]) -> str:
    parts = conversation.get("conversation_parts", {}).get("conversation_parts", [])
    return str(parts[-1]["id"]) if parts else ""


class IntercomCustomer:
    """A customer writing in the Messenger; one instance per email address."""

    def __init__(self, http: httpx.AsyncClient, *, email: str, name: str) -> None:
        self.http = http
        self.email = email
        self.name = name
        self.contact_id: str | None = None
        self._identifying = asyncio.Lock()

    async def _find(self) -> str | None:
        query = {"query": {"field": "email", "operator": "=", "value": self.email}}
        found = await _call(self.http, "POST", "/contacts/search", "contact search", query)
        data = found.get("data") or []
        return str(data[0]["id"]) if data else None

    async def identify(self) -> str:
        """The contact id for this email: found, or created as a user."""
        async with self._identifying:  # two tabs of one customer identify once
            if self.contact_id is not None:
                return self.contact_id
            contact_id = await self._find()
            if contact_id is None:
                body = {"role": "user", "email": self.email, "name": self.name}
                try:
                    created = await _call(self.http, "POST", "/contacts", "contact create", body)
                    contact_id = str(created["id"])
                except FatalAPIError as exc:
                    # 409: someone else created this email between our search and our create.
                    if exc.status != 409 or (contact_id := await self._find()) is None:
                        raise
            self.contact_id = contact_id
            return contact_id

    async def start_conversation(self, body: str) -> str:
        """Write the first message; returns the new conversation's id."""
        contact_id = await self.identify()
        payload = {"from": {"type": "user", "id": contact_id}, "body": body}
        message = await _call(self.http, "POST", "/conversations", "conversation create", payload)
        return str(message["conversation_id"])

    async def reply(
        self, conversation_id: str, body: str, *, attachment_urls: Sequence[str] = ()
    ) -> str:
        """Reply as this contact; returns the new part's id."""
        payload: dict[str, Any] = {
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": await self.identify(),
            "body": body,
        }
        if attachment_urls:
            payload["attachment_urls"] = list(attachment_urls)
        path = f"/conversations/{conversation_id}/reply"
        return _last_part_id(await _call(self.http, "POST", path, "customer reply", payload))


class IntercomAdmin:
    """A human teammate working the inbox."""

    def __init__(self, http: httpx.AsyncClient, *, admin_id: str, name: str = "") -> None:
        self.http = http
        self.admin_id = admin_id
        self.name = name
        self._tag_ids: dict[str, str] = {}
        self._attributes: set[str] | None = None
        self._lock = asyncio.Lock()

    async def _reply(
        self, conversation_id: str, kind: str, body: str, attachment_urls: Sequence[str]
    ) -> str:
        payload: dict[str, Any] = {
            "message_type": kind,
            "type": "admin",
            "admin_id": self.admin_id,
            "body": body,
        }
        if attachment_urls:
            payload["attachment_urls"] = list(attachment_urls)
        path = f"/conversations/{conversation_id}/reply"
        return _last_part_id(await _call(self.http, "POST", path, f"admin {kind}", payload))

    async def reply(
        self, conversation_id: str, body: str, *, attachment_urls: Sequence[str] = ()
    ) -> str:
        """A reply the customer sees; returns the part id."""
        return await self._reply(conversation_id, "comment", body, attachment_urls)

    async def note(self, conversation_id: str, body: str) -> str:
        """An internal note; returns the part id."""
        return await self._reply(conversation_id, "note", body, ())

    async def _manage(self, conversation_id: str, message_type: str, **fields: Any) -> str:
        payload = {"message_type": message_type, "type": "admin", "admin_id": self.admin_id}
        path = f"/conversations/{conversation_id}/parts"
        conversation = await _call(
            self.http, "POST", path, f"conversation {message_type}", payload | fields
        )
        return _last_part_id(conversation)

    async def close(self, conversation_id: str, body: str | None = None) -> str:
        return await self._manage(conversation_id, "close", **({"body": body} if body else {}))

    async def open(self, conversation_id: str) -> str:
        return await self._manage(conversation_id, "open")

    async def snooze(self, conversation_id: str, until: int) -> str:
        """Snooze until ``until`` (Unix seconds, in the future)."""
        return await self._manage(conversation_id, "snoozed", snoozed_until=until)

    async def assign(self, conversation_id: str, assignee_id: str, *, team: bool = False) -> str:
        """Assign to an admin (or a team with ``team=True``); ``"0"`` unassigns."""
        payload = {
            "message_type": "assignment",
            "type": "team" if team else "admin",
            "admin_id": self.admin_id,
            "assignee_id": assignee_id,
        }
        path = f"/conversations/{conversation_id}/parts"
        return _last_part_id(await _call(self.http, "POST", path, "assignment", payload))

    async def tag_id(self, name: str) -> str:
        """The id of the tag called ``name``; ``POST /tags`` creates it or returns it."""
        if name not in self._tag_ids:
            tag = await _call(self.http, "POST", "/tags", "tag create", {"name": name})
            self._tag_ids[name] = str(tag["id"])
        return self._tag_ids[name]

    async def tag(self, conversation_id: str, name: str) -> str:
        """Tag the conversation by tag name; returns the tag id."""
        tag_id = await self.tag_id(name)
        body = {"id": tag_id, "admin_id": self.admin_id}
        await _call(self.http, "POST", f"/conversations/{conversation_id}/tags", "tag", body)
        return tag_id

    async def untag(self, conversation_id: str, name: str) -> None:
        tag_id = await self.tag_id(name)
        path = f"/conversations/{conversation_id}/tags/{tag_id}"
        await _call(self.http, "DELETE", path, "untag", {"admin_id": self.admin_id})

    async def _known_attributes(self) -> set[str]:
        listed = await _call(self.http, "GET", "/data_attributes?model=contact", "attributes")
        return {str(a["name"]) for a in listed.get("data", []) if a.get("custom")}

    async def _ensure_attribute(self, name: str, value: AttributeValue) -> None:
        async with self._lock:
            if self._attributes is None:
                self._attributes = await self._known_attributes()
            if name in self._attributes:
                return
            body = {"name": name, "model": "contact", "data_type": _data_type(value)}
            try:
                await _call(self.http, "POST", "/data_attributes", "attribute create", body)
            except FatalAPIError:
                # Another teammate created it a moment ago: it exists now, or we fail below.
                self._attributes = await self._known_attributes()
                if name not in self._attributes:
                    raise
            self._attributes.add(name)

    async def set_contact_attributes(
        self, contact_id: str, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Write custom attributes (``{"plan": "enterprise"}``) on a contact."""
        for name, value in attributes.items():
            await self._ensure_attribute(name, value)
        body = {"custom_attributes": dict(attributes)}
        await _call(self.http, "PUT", f"/contacts/{contact_id}", "contact update", body)


async def find_human_admins(http: httpx.AsyncClient) -> list[IntercomAdmin]:
    """Every admin of the workspace except the token's own (the integration's bot admin)."""
    me = await _call(http, "GET", "/me", "me")
    listed = await _call(http, "GET", "/admins", "admins")
    return [
        IntercomAdmin(http, admin_id=str(a["id"]), name=str(a.get("name") or ""))
        for a in listed.get("admins", [])
        if str(a["id"]) != str(me["id"])
    ]
