"""Sandbox-only endpoints that act as the people around the API.

The human agent in Zendesk's agent workspace (``/_sandbox/agent/...``):

* ``GET  /_sandbox/agent/conversations`` the conversations the agent workspace controls;
* ``POST /_sandbox/agent/conversations/{id}/reply`` ``{"text"}`` or
  ``{"type": "file"|"image", "mediaUrl", "text"?, "altText"?}``, optionally ``agentId``,
  ``agentName``, ``avatarUrl``: a ``business`` message with the ``agent`` subtype, the agent
  workspace as source and ``__zendesk_msg.agent.id`` in its metadata, as agent replies are;
* ``POST /_sandbox/agent/conversations/{id}/release`` ``{"reason"?, "metadata"?}``: the
  ticket is solved and control released (``reason`` defaults to ``ticketClosed``);
* ``POST /_sandbox/agent/conversations/{id}/pass`` ``{"switchboardIntegration"?, ...}``:
  control goes back (to ``next`` by default), as some agent workspace setups do;
* ``POST /_sandbox/agent/conversations/{id}/accept``: accept control the agent workspace
  was offered.

The end user in the Web Widget (``/_sandbox/enduser/...``):

* ``POST /_sandbox/enduser/conversations/{id}/messages`` ``{"text"}`` (or media as above):
  a ``user`` message from the conversation's participant with the widget as source.

They change the same state and emit the same webhooks the platform would. Replying or
releasing while the agent workspace is not in control answers 409: a real agent could not.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from connectors.zendesk_conversations.sandbox import switchboard as actions
from connectors.zendesk_conversations.sandbox import validation
from connectors.zendesk_conversations.sandbox.config import AGENT_WORKSPACE_TYPE
from connectors.zendesk_conversations.sandbox.errors import SunshineAPIError, bad_request
from connectors.zendesk_conversations.sandbox.http import Api, json_response, read_json
from connectors.zendesk_conversations.sandbox.model import Conversation, SwitchboardIntegration
from connectors.zendesk_conversations.sandbox.render import conversation_json, message_json

__all__ = ["AGENT_ID_METADATA_KEY", "AgentRoutes"]

#: Where agent workspace messages carry the Zendesk agent's user id.
AGENT_ID_METADATA_KEY: Final = "__zendesk_msg.agent.id"
_DEFAULT_AGENT_ID: Final = "900000000001"
_DEFAULT_AGENT_NAME: Final = "Sandbox Agent"


def _message_content(body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("type") or ("file" if body.get("mediaUrl") else "text")
    if kind not in ("text", "file", "image"):
        raise bad_request("type must be one of text, file, image")
    content: dict[str, Any] = {"type": kind}
    for name in ("text", "mediaUrl", "altText"):
        if body.get(name) is not None:
            content[name] = body[name]
    return validation.content(content)


class AgentRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        one = "/_sandbox/agent/conversations/{conversationId}"
        return [
            web.get("/_sandbox/agent/conversations", self.inbox),
            web.post(f"{one}/reply", self.reply),
            web.post(f"{one}/release", self.release),
            web.post(f"{one}/pass", self.pass_back),
            web.post(f"{one}/accept", self.accept),
            web.post("/_sandbox/enduser/conversations/{conversationId}/messages", self.user_says),
        ]

    def _workspace(self) -> SwitchboardIntegration:
        for sbi in self.api.state.switchboard.integrations.values():
            if sbi.integration_type == AGENT_WORKSPACE_TYPE:
                return sbi
        raise SunshineAPIError(409, "conflict", "The switchboard has no agent workspace")

    def _controlled(self, request: web.Request) -> Conversation:
        conversation = self.api.state.get_conversation(request.match_info["conversationId"])
        if conversation.active_id != self._workspace().id:
            raise SunshineAPIError(
                409, "conflict", "The agent workspace is not in control of this conversation"
            )
        return conversation

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await read_json(request, required=False)
        return {} if raw is None else validation.require_object(raw)

    async def inbox(self, request: web.Request) -> web.Response:
        state = self.api.state
        workspace = self._workspace()
        owned = [c for c in state.conversations.values() if c.active_id == workspace.id]
        return json_response(
            {"conversations": [conversation_json(c, state.switchboard) for c in owned]}
        )

    async def reply(self, request: web.Request) -> web.Response:
        conversation = self._controlled(request)
        body = await self._body(request)
        content = _message_content(body)
        author: dict[str, Any] = {
            "type": "business",
            "subtypes": ["agent"],
            "displayName": str(body.get("agentName") or _DEFAULT_AGENT_NAME),
        }
        if body.get("avatarUrl"):
            author["avatarUrl"] = str(body["avatarUrl"])
        workspace = self._workspace()
        message, events = self.api.state.post_message(
            conversation,
            author=author,
            content=content,
            source={"type": AGENT_WORKSPACE_TYPE, "integrationId": workspace.integration_id},
            metadata={AGENT_ID_METADATA_KEY: str(body.get("agentId") or _DEFAULT_AGENT_ID)},
        )
        await self.api.publish(events)
        return json_response({"messages": [message_json(message)]}, status=201)

    async def release(self, request: web.Request) -> web.Response:
        conversation = self._controlled(request)
        body = await self._body(request)
        reason = validation.control_reason(body) if "reason" in body else "ticketClosed"
        metadata = validation.metadata(body.get("metadata"))
        return await self.api.act(
            lambda: actions.release_control(
                self.api.state, conversation, metadata=metadata, reason=reason
            )
        )

    async def pass_back(self, request: web.Request) -> web.Response:
        conversation = self._controlled(request)
        body = await self._body(request)
        target = body.get("switchboardIntegration") or "next"
        if not isinstance(target, str):
            raise bad_request("switchboardIntegration must be a string")
        reason = validation.control_reason(body) if "reason" in body else "ticketClosed"
        metadata = validation.metadata(body.get("metadata"))
        # The agent workspace passes as itself: its "next" is its own successor.
        workspace = self._workspace().integration_id
        return await self.api.act(
            lambda: actions.pass_control(
                self.api.state,
                conversation,
                target,
                metadata=metadata,
                reason=reason,
                caller_integration_id=workspace,
            )
        )

    async def accept(self, request: web.Request) -> web.Response:
        conversation = self.api.state.get_conversation(request.match_info["conversationId"])
        if conversation.pending_id != self._workspace().id:
            raise SunshineAPIError(
                409, "conflict", "The agent workspace has not been offered this conversation"
            )
        body = await self._body(request)
        metadata = validation.metadata(body.get("metadata"))
        return await self.api.act(
            lambda: actions.accept_control(self.api.state, conversation, metadata=metadata)
        )

    async def user_says(self, request: web.Request) -> web.Response:
        state = self.api.state
        conversation = state.get_conversation(request.match_info["conversationId"])
        if not conversation.user_ids:
            raise bad_request("The conversation has no participant")
        body = await self._body(request)
        message, events = state.post_message(
            conversation,
            author={"type": "user", "userId": conversation.user_ids[0]},
            content=_message_content(body),
            source={"type": "web", "integrationId": state.config.web_integration_id},
        )
        await self.api.publish(events)
        return json_response({"messages": [message_json(message)]}, status=201)
