"""Conversations and messages.

* ``POST /conversations`` (``type: personal``, exactly one participant by ``userId`` or
  ``userExternalId``; 404 ``user_not_found`` when that user does not exist);
* ``GET /conversations?filter[userId]=...|filter[userExternalId]=...`` (cursor pages);
* ``GET|PATCH /conversations/{conversationId}``;
* ``POST /conversations/{conversationId}/messages`` → 201 ``{"messages": [...]}``;
* ``GET /conversations/{conversationId}/messages``: pages backwards, 100 per page, the most
  recent page first; ``page[before]``/``page[after]`` move from there.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from sandboxes.zendesk_conversations import validation
from sandboxes.zendesk_conversations.config import MESSAGES_PAGE_SIZE
from sandboxes.zendesk_conversations.errors import SunshineAPIError, bad_request
from sandboxes.zendesk_conversations.http import (
    Api,
    json_response,
    page_links,
    read_json,
    routes_for,
)
from sandboxes.zendesk_conversations.model import Conversation, Message, User
from sandboxes.zendesk_conversations.render import conversation_json, message_json

__all__ = ["ConversationRoutes", "cursor_page"]

API_SOURCE = {"type": "api:conversations"}

_Record = TypeVar("_Record", Conversation, Message)


def cursor_page(
    records: list[_Record], page: validation.Page, *, backwards: bool
) -> tuple[list[_Record], dict[str, Any]]:
    """One page of ``records`` (oldest first) and its ``meta``.

    Without a cursor a forward list starts at the oldest record and a backward one at the
    newest. ``hasMore`` says whether records remain in the direction being paged.
    """
    ids = [r.id for r in records]
    size = page.size
    if page.after is not None:
        if page.after not in ids:
            raise bad_request("Invalid page query parameters")
        start = ids.index(page.after) + 1
        end = min(len(records), start + size)
        has_more = end < len(records)
    elif page.before is not None:
        if page.before not in ids:
            raise bad_request("Invalid page query parameters")
        end = ids.index(page.before)
        start = max(0, end - size)
        has_more = start > 0
    elif backwards:
        end = len(records)
        start = max(0, end - size)
        has_more = start > 0
    else:
        start, end = 0, min(len(records), size)
        has_more = end < len(records)
    chunk = records[start:end]
    meta: dict[str, Any] = {"hasMore": has_more}
    if chunk and start > 0:
        meta["beforeCursor"] = chunk[0].id
    if chunk and end < len(records):
        meta["afterCursor"] = chunk[-1].id
    return chunk, meta


def _participant_user(api: Api, participants: Any) -> User:
    if not isinstance(participants, list) or len(participants) != 1:
        raise bad_request("participants must contain exactly 1 item for personal conversations")
    participant = validation.require_object(participants[0], "participant")
    user_id = participant.get("userId")
    external_id = participant.get("userExternalId")
    if (user_id is None) == (external_id is None):
        raise bad_request("One of participants[0].userId or userExternalId is required, not both")
    reference = user_id if user_id is not None else external_id
    if not isinstance(reference, str):
        raise bad_request("participant user references must be strings")
    if user_id is not None:
        user = api.state.users.get(reference)
    else:
        user_key = api.state.users_by_external_id.get(reference)
        user = api.state.users.get(user_key) if user_key else None
    if user is None:
        raise SunshineAPIError(404, "user_not_found", "User not found")
    return user


def _conversation_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("displayName", "description"):
        if name in body:
            fields[name] = validation.optional_str(body, name, max_length=100)
    if "iconUrl" in body:
        icon = validation.optional_str(body, "iconUrl", max_length=2048)
        if icon is not None and not icon.startswith(("http://", "https://")):
            raise bad_request("iconUrl must be a URL")
        fields["iconUrl"] = icon
    if "metadata" in body:
        fields["metadata"] = validation.metadata(body["metadata"])
    return fields


class ConversationRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        one = "/conversations/{conversationId}"
        return [
            *routes_for("POST", "/conversations", self.create),
            *routes_for("GET", "/conversations", self.list),
            *routes_for("GET", one, self.get),
            *routes_for("PATCH", one, self.update),
            *routes_for("POST", f"{one}/messages", self.post_message),
            *routes_for("GET", f"{one}/messages", self.list_messages),
        ]

    def _render(self, conversation: Conversation) -> dict[str, Any]:
        return conversation_json(conversation, self.api.state.switchboard)

    async def create(self, request: web.Request) -> web.Response:
        body = validation.require_object(await read_json(request))
        kind = body.get("type")
        if kind not in ("personal", "sdkGroup"):
            raise bad_request("type must be one of personal, sdkGroup")
        if kind == "sdkGroup":
            raise bad_request("sdkGroup conversations are not supported by this app")
        fields = _conversation_fields(body)
        user = _participant_user(self.api, body.get("participants"))
        conversation, events = self.api.state.create_conversation(user=user, fields=fields)
        await self.api.publish(events)
        return json_response({"conversation": self._render(conversation)}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        user_id = request.query.get("filter[userId]")
        external_id = request.query.get("filter[userExternalId]")
        if (user_id is None) == (external_id is None):
            raise bad_request("One of filter[userId] or filter[userExternalId] is required")
        state = self.api.state
        user = state.users.get(user_id) if user_id is not None else None
        if external_id is not None:
            user = state.find_user(external_id)
            if user is not None and user.external_id != external_id:
                user = None
        if user is None:
            raise SunshineAPIError(404, "user_not_found", "User not found")
        page = validation.page(request.query)
        chunk, meta = cursor_page(state.conversations_of(user), page, backwards=False)
        return json_response(
            {
                "conversations": [self._render(c) for c in chunk],
                "meta": meta,
                "links": page_links(request, meta.get("beforeCursor"), meta.get("afterCursor")),
            }
        )

    async def get(self, request: web.Request) -> web.Response:
        conversation = self.api.state.get_conversation(request.match_info["conversationId"])
        return json_response({"conversation": self._render(conversation)})

    async def update(self, request: web.Request) -> web.Response:
        state = self.api.state
        conversation = state.get_conversation(request.match_info["conversationId"])
        body = validation.require_object(await read_json(request))
        state.update_conversation(conversation, _conversation_fields(body))
        return json_response({"conversation": self._render(conversation)})

    async def post_message(self, request: web.Request) -> web.Response:
        state = self.api.state
        conversation = state.get_conversation(request.match_info["conversationId"])
        body = validation.require_object(await read_json(request))
        author = validation.author(body.get("author"))
        content = validation.content(body.get("content"))
        metadata = validation.metadata(body.get("metadata"))
        message, events = state.post_message(
            conversation, author=author, content=content, source=dict(API_SOURCE), metadata=metadata
        )
        await self.api.publish(events)
        return json_response({"messages": [message_json(message)]}, status=201)

    async def list_messages(self, request: web.Request) -> web.Response:
        conversation = self.api.state.get_conversation(
            request.match_info["conversationId"], generic_404=True
        )
        page = validation.page(request.query)
        page = validation.Page(after=page.after, before=page.before, size=MESSAGES_PAGE_SIZE)
        chunk, meta = cursor_page(conversation.messages, page, backwards=True)
        return json_response(
            {
                "messages": [message_json(m) for m in chunk],
                "meta": meta,
                "links": page_links(request, meta.get("beforeCursor"), meta.get("afterCursor")),
            }
        )
