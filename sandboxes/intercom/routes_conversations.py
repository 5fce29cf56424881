"""Conversation endpoints: create, show, update, delete, reply, parts, tags, search, list."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandboxes.intercom.conversations import ConversationService
from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.routes_contacts import Publish, json_response, read_json
from sandboxes.intercom.search import (
    CONVERSATION_FIELDS,
    Page,
    SearchSpec,
    compile_query,
    paginate,
)

__all__ = ["conversation_routes"]


def conversation_routes(service: ConversationService, publish: Publish) -> list[web.RouteDef]:
    spec = SearchSpec(CONVERSATION_FIELDS, day_granular_dates=False, default_per_page=20)

    def with_parts(conversation_id: str) -> web.Response:
        conversation = service.get(conversation_id)
        return json_response(service.render(conversation, conversation.parts))

    def as_list(page: Page) -> web.Response:
        return json_response(
            {
                "type": "conversation.list",
                "conversations": [service.render(c) for c in page.items],
                "total_count": page.total_count,
                "pages": page.pages,
            }
        )

    async def create(request: web.Request) -> web.Response:
        message, events = service.create(await read_json(request))
        await publish(events)
        return json_response(message)

    async def show(request: web.Request) -> web.Response:
        return with_parts(request.match_info["id"])

    async def update(request: web.Request) -> web.Response:
        conversation = service.update(request.match_info["id"], await read_json(request))
        return json_response(service.render(conversation, conversation.parts))

    async def delete(request: web.Request) -> web.Response:
        deleted, events = service.delete(request.match_info["id"])
        await publish(events)
        return json_response(deleted)

    async def reply(request: web.Request) -> web.Response:
        conversation, events = service.reply(request.match_info["id"], await read_json(request))
        await publish(events)
        return json_response(service.render(conversation, conversation.parts))

    async def manage(request: web.Request) -> web.Response:
        conversation, events = service.manage(request.match_info["id"], await read_json(request))
        await publish(events)
        return json_response(service.render(conversation, conversation.parts))

    async def add_tag(request: web.Request) -> web.Response:
        tag, events = service.tag(request.match_info["id"], await read_json(request))
        await publish(events)
        return json_response(tag.basic())

    async def remove_tag(request: web.Request) -> web.Response:
        body = await read_json(request)
        tag = service.untag(request.match_info["id"], request.match_info["tag_id"], body)
        return json_response(tag.basic())

    async def search(request: web.Request) -> web.Response:
        body = await read_json(request)
        if "query" not in body:
            raise IntercomAPIError.missing("query")
        predicate = compile_query(spec, body["query"])
        matches = [c for c in service.state.conversations.values() if predicate(c.search_value)]
        return as_list(
            paginate(spec, matches, body.get("pagination"), key=lambda c: (c.created_at, c.seq))
        )

    async def list_all(request: web.Request) -> web.Response:
        pagination: dict[str, Any] = {}
        if "per_page" in request.query:
            try:
                pagination["per_page"] = int(request.query["per_page"])
            except ValueError:
                raise IntercomAPIError.invalid("per_page must be an integer") from None
        if "starting_after" in request.query:
            pagination["starting_after"] = request.query["starting_after"]
        conversations = list(service.state.conversations.values())
        return as_list(
            paginate(spec, conversations, pagination, key=lambda c: (c.created_at, c.seq))
        )

    return [
        web.post("/conversations", create),
        web.get("/conversations", list_all),
        web.post("/conversations/search", search),
        web.get("/conversations/{id}", show),
        web.put("/conversations/{id}", update),
        web.delete("/conversations/{id}", delete),
        web.post("/conversations/{id}/reply", reply),
        web.post("/conversations/{id}/parts", manage),
        web.post("/conversations/{id}/tags", add_tag),
        web.delete("/conversations/{id}/tags/{tag_id}", remove_tag),
    ]
