"""The people (and the bot) around a Zendesk Conversations (Sunshine Conversations v2) app.

* :class:`SunshineEndUser` chats in the Web Widget. The widget SDK creates the user and the
  conversation; the sandbox emulates only the widget's *messages*
  (``/_sandbox/enduser/...``), so the actor creates user and conversation through the public
  API with the app key, as a messaging-authentication backend would, then writes through the
  widget endpoint.
* :class:`SunshineAIAgent` is the AI agent behind the app's custom integration: ``business``
  messages through the public API, ``passControl`` to the agent workspace with hand-off
  metadata (reason, sentiment, summary: a flat object under 4 KB), ``releaseControl`` when it
  resolved the conversation itself.
* :class:`SunshineHumanAgent` is a person in Zendesk's agent workspace, acting through the
  sandbox's documented agent-side endpoints (``/_sandbox/agent/...``): the inbox, replies
  (``business`` messages with the ``agent`` subtype) and releasing the conversation when the
  ticket is solved.

Clients: :func:`sunshine_http` (app key, basic auth) for the public API and
:func:`widget_http` (no credential) for the sandbox's widget and agent-workspace endpoints.
Failures surface as :class:`~schemas.errors.RetriableAPIError` or
:class:`~schemas.errors.FatalAPIError` with redacted messages.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import httpx

from sandboxes.base.people import call_json
from schemas.errors import FatalAPIError

__all__ = [
    "AGENT_WORKSPACE",
    "SunshineAIAgent",
    "SunshineEndUser",
    "SunshineHumanAgent",
    "sunshine_http",
    "widget_http",
]

#: The name Zendesk gives the agent workspace's switchboard integration.
AGENT_WORKSPACE = "zd-agentWorkspace"


def sunshine_http(
    base_url: str,
    *,
    key_id: str,
    key_secret: str,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    """The public API with an app-scoped key (basic auth)."""
    return httpx.AsyncClient(
        base_url=base_url,
        auth=httpx.BasicAuth(key_id, key_secret),
        headers={"Accept": "application/json"},
        transport=transport,
        timeout=timeout,
    )


def widget_http(
    base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0
) -> httpx.AsyncClient:
    """The sandbox's Web Widget and agent-workspace endpoints (no API credential)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": "application/json"},
        transport=transport,
        timeout=timeout,
    )


_call = functools.partial(call_json, platform="sunshine")


def _message_id(answer: dict[str, Any]) -> str:
    return str(answer["messages"][0]["id"])


class SunshineEndUser:
    """A customer in the Web Widget; one instance per person (``external_id``)."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        widget: httpx.AsyncClient,
        *,
        app_id: str,
        external_id: str,
        given_name: str,
        surname: str,
        email: str,
    ) -> None:
        self.api = api
        self.widget = widget
        self.app_id = app_id
        self.external_id = external_id
        self.profile = {"givenName": given_name, "surname": surname, "email": email}
        self.user_id: str | None = None
        self._creating = asyncio.Lock()

    async def ensure_user(self) -> str:
        """The Sunshine user for this person, created on first contact."""
        async with self._creating:
            if self.user_id is None:
                base = f"/v2/apps/{self.app_id}/users"
                body = {"externalId": self.external_id, "profile": self.profile}
                try:
                    user = (await _call(self.api, "POST", base, "user create", body))["user"]
                except FatalAPIError as exc:
                    if exc.status != 409:  # 409: the user came back; fetch it instead
                        raise
                    path = f"{base}/{self.external_id}"
                    user = (await _call(self.api, "GET", path, "user show"))["user"]
                self.user_id = str(user["id"])
            return self.user_id

    async def open_conversation(self) -> str:
        """Open the widget: a new personal conversation; returns its id."""
        await self.ensure_user()
        body = {"type": "personal", "participants": [{"userExternalId": self.external_id}]}
        path = f"/v2/apps/{self.app_id}/conversations"
        answer = await _call(self.api, "POST", path, "conversation create", body)
        return str(answer["conversation"]["id"])

    async def say(self, conversation_id: str, text: str) -> str:
        """Type a message in the widget; returns the message id."""
        path = f"/_sandbox/enduser/conversations/{conversation_id}/messages"
        return _message_id(await _call(self.widget, "POST", path, "widget message", {"text": text}))


class SunshineAIAgent:
    """The AI agent answering through the app's custom integration."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        app_id: str,
        display_name: str = "Aria (AI agent)",
        hand_off_to: str = AGENT_WORKSPACE,
    ) -> None:
        self.http = http
        self.app_id = app_id
        self.display_name = display_name
        self.hand_off_to = hand_off_to

    def _path(self, conversation_id: str, tail: str) -> str:
        return f"/v2/apps/{self.app_id}/conversations/{conversation_id}/{tail}"

    async def answer(self, conversation_id: str, text: str) -> str:
        """A ``business`` message from the AI agent; returns the message id."""
        body = {
            "author": {"type": "business", "displayName": self.display_name},
            "content": {"type": "text", "text": text},
        }
        path = self._path(conversation_id, "messages")
        return _message_id(await _call(self.http, "POST", path, "ai message", body))

    async def hand_off(
        self, conversation_id: str, *, reason: str, sentiment: str, summary: str
    ) -> None:
        """Pass control to the human agents with what they need to pick it up."""
        body = {
            "switchboardIntegration": self.hand_off_to,
            # Flat strings: the switchboard refuses nested metadata and anything over 4 KB.
            "metadata": {"reason": reason, "sentiment": sentiment, "summary": summary[:2000]},
        }
        await _call(self.http, "POST", self._path(conversation_id, "passControl"), "hand-off", body)

    async def release(self, conversation_id: str) -> None:
        """Resolved without a human: release control (the next message starts afresh)."""
        path = self._path(conversation_id, "releaseControl")
        await _call(self.http, "POST", path, "ai release", {})


class SunshineHumanAgent:
    """A person in Zendesk's agent workspace (sandbox agent-side endpoints)."""

    def __init__(self, http: httpx.AsyncClient, *, agent_id: str, name: str) -> None:
        self.http = http
        self.agent_id = agent_id
        self.name = name

    async def inbox(self) -> list[str]:
        """Ids of the conversations the agent workspace controls."""
        answer = await _call(self.http, "GET", "/_sandbox/agent/conversations", "agent inbox")
        return [str(c["id"]) for c in answer.get("conversations", [])]

    async def reply(self, conversation_id: str, text: str) -> str:
        """Reply as this agent; returns the message id."""
        body = {"text": text, "agentId": self.agent_id, "agentName": self.name}
        path = f"/_sandbox/agent/conversations/{conversation_id}/reply"
        return _message_id(await _call(self.http, "POST", path, "agent reply", body))

    async def release(self, conversation_id: str) -> None:
        """Solve the ticket: control is released (reason ``ticketClosed``)."""
        path = f"/_sandbox/agent/conversations/{conversation_id}/release"
        await _call(self.http, "POST", path, "agent release", {})
