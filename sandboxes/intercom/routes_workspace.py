"""Workspace endpoints: ``/me``, admins, tags and data attributes.

Paths, parameters and bodies follow the 2.14 spec (``intercom-openapi-2.14.yaml``):
``GET /me`` (``identifyAdmin``, an ``admin_with_app`` with the embedded ``app``), ``GET
/admins`` (``listAdmins``, ``admin_list`` typed ``admin.list``), ``GET /admins/{admin_id}``,
``GET|POST /tags`` (``listTags``/``createTag``, a ``tag_list`` typed ``list``; a POST with an
existing tag's ``id`` renames it), ``GET /tags/{tag_id}``, ``GET|POST /data_attributes``
(``lisDataAttributes``: ``model`` one of ``contact``, ``company``, ``conversation``, a
``data_attribute_list`` typed ``list``; ``createDataAttribute``). Their shapes are checked
against the spec by ``tests/sandboxes/intercom/test_contract.py``. Archived attributes
(``include_archived``) do not exist here: the list is what the spec's default returns.
Refusals are ``error.list`` bodies (:mod:`.errors`).
"""

from __future__ import annotations

from aiohttp import web

from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.routes_contacts import json_response, read_json
from sandboxes.intercom.state import IntercomState

__all__ = ["workspace_routes"]


def workspace_routes(state: IntercomState) -> list[web.RouteDef]:
    config = state.config

    async def me(request: web.Request) -> web.Response:
        owner = state.token_admin()
        return json_response(
            owner.to_api()
            | {
                "email_verified": True,
                "app": {
                    "type": "app",
                    "id_code": config.app_id,
                    "name": config.app_name,
                    "created_at": 1700000000,
                    "secure": False,
                    "identity_verification": False,
                    "timezone": config.timezone,
                    "region": "US",
                },
                "avatar": {"type": "avatar", "image_url": None},
            }
        )

    async def list_admins(request: web.Request) -> web.Response:
        return json_response(
            {"type": "admin.list", "admins": [a.to_api() for a in state.admins.values()]}
        )

    async def show_admin(request: web.Request) -> web.Response:
        return json_response(state.admin(request.match_info["id"]).to_api())

    async def list_tags(request: web.Request) -> web.Response:
        return json_response({"type": "list", "data": [t.basic() for t in state.tags.values()]})

    async def create_tag(request: web.Request) -> web.Response:
        return json_response(state.create_or_update_tag(await read_json(request)).basic())

    async def show_tag(request: web.Request) -> web.Response:
        return json_response(state.tag(request.match_info["id"]).basic())

    async def list_attributes(request: web.Request) -> web.Response:
        model = request.query.get("model")
        if model not in (None, "contact", "company", "conversation"):
            raise IntercomAPIError.invalid(
                "model must be contact, company or conversation", field="model"
            )
        return json_response(
            {"type": "list", "data": [a.to_api() for a in state.data_attributes(model)]}
        )

    async def create_attribute(request: web.Request) -> web.Response:
        return json_response(state.create_data_attribute(await read_json(request)).to_api())

    return [
        web.get("/me", me),
        web.get("/admins", list_admins),
        web.get("/admins/{id}", show_admin),
        web.get("/tags", list_tags),
        web.post("/tags", create_tag),
        web.get("/tags/{id}", show_tag),
        web.get("/data_attributes", list_attributes),
        web.post("/data_attributes", create_attribute),
    ]
