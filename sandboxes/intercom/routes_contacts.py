"""Contact endpoints: create, show, update, delete, search, find by external id, tags."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.search import CONTACT_FIELDS, SearchSpec, compile_query, paginate
from sandboxes.intercom.state import Event, IntercomState

__all__ = ["Publish", "contact_routes", "json_response", "read_json"]

Publish = Callable[[list[Event]], Awaitable[None]]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; an empty body reads as ``{}``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise IntercomAPIError.invalid("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise IntercomAPIError.invalid("The request body must be a JSON object")
    return body


def contact_routes(state: IntercomState, publish: Publish) -> list[web.RouteDef]:
    spec = SearchSpec(
        CONTACT_FIELDS, day_granular_dates=True, default_per_page=50, timezone=state.timezone
    )

    async def create(request: web.Request) -> web.Response:
        contact, events = state.create_contact(await read_json(request))
        await publish(events)
        return json_response(state.render_contact(contact))

    async def show(request: web.Request) -> web.Response:
        return json_response(state.render_contact(state.contact(request.match_info["id"])))

    async def update(request: web.Request) -> web.Response:
        contact, events = state.update_contact(request.match_info["id"], await read_json(request))
        await publish(events)
        return json_response(state.render_contact(contact))

    async def delete(request: web.Request) -> web.Response:
        deleted, events = state.delete_contact(request.match_info["id"])
        await publish(events)
        return json_response(deleted)

    async def find_by_external_id(request: web.Request) -> web.Response:
        contact = state.contact_by_external_id(request.match_info["external_id"])
        return json_response(state.render_contact(contact))

    async def search(request: web.Request) -> web.Response:
        body = await read_json(request)
        if "query" not in body:
            raise IntercomAPIError.missing("query")
        predicate = compile_query(spec, body["query"])
        # Contacts newer than the index lag are not searchable yet ("Contact Creation Delay").
        indexed_before = state.clock.now().timestamp() - state.config.search_index_lag_s
        matches = [
            c
            for c in state.contacts.values()
            if c.created_at <= indexed_before and predicate(c.search_value)
        ]
        page = paginate(spec, matches, body.get("pagination"), key=lambda c: (c.created_at, c.seq))
        return json_response(
            {
                "type": "list",
                "data": [state.render_contact(c) for c in page.items],
                "total_count": page.total_count,
                "pages": page.pages,
            }
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
        contacts = list(state.contacts.values())
        page = paginate(spec, contacts, pagination, key=lambda c: (c.created_at, c.seq))
        return json_response(
            {
                "type": "list",
                "data": [state.render_contact(c) for c in page.items],
                "total_count": page.total_count,
                "pages": page.pages,
            }
        )

    async def list_tags(request: web.Request) -> web.Response:
        contact = state.contact(request.match_info["id"])
        tags = [state.tags[t].basic() for t in contact.tag_ids if t in state.tags]
        return json_response({"type": "list", "data": tags})

    async def add_tag(request: web.Request) -> web.Response:
        tag, events = state.tag_contact(request.match_info["id"], await read_json(request))
        await publish(events)
        return json_response(tag.basic())

    async def remove_tag(request: web.Request) -> web.Response:
        tag, events = state.untag_contact(request.match_info["id"], request.match_info["tag_id"])
        await publish(events)
        return json_response(tag.basic())

    return [
        web.post("/contacts", create),
        web.get("/contacts", list_all),
        web.post("/contacts/search", search),
        web.get("/contacts/find_by_external_id/{external_id}", find_by_external_id),
        web.get("/contacts/{id}", show),
        web.put("/contacts/{id}", update),
        web.delete("/contacts/{id}", delete),
        web.get("/contacts/{id}/tags", list_tags),
        web.post("/contacts/{id}/tags", add_tag),
        web.delete("/contacts/{id}/tags/{tag_id}", remove_tag),
    ]
