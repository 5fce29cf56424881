"""Users: ``POST /users`` (409 on a taken externalId), ``GET|PATCH /users/{userIdOrExternalId}``.

Spec, operation ``CreateUser`` (``POST /v2/apps/{appId}/users``): 201 ``{"user"}``; 409
``{"errors":[{"code":"conflict","title":"User already exists"}]}`` when the ``externalId`` is
taken (its example), so a create is not idempotent and a client that retries one must read
the user instead. ``GetUser``/``UpdateUser`` take a user id or an external id and answer 404
(``user_not_found``) when neither matches. Validation titles are ours (UNVERIFIED wording).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandboxes.zendesk_conversations import validation
from sandboxes.zendesk_conversations.errors import bad_request
from sandboxes.zendesk_conversations.http import Api, json_response, read_json, routes_for
from sandboxes.zendesk_conversations.render import user_json

__all__ = ["UserRoutes"]


def _common_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields create and update share, validated; only those present in ``body``."""
    fields: dict[str, Any] = {}
    if "profile" in body:
        fields["profile"] = validation.profile(body["profile"])
    if "metadata" in body:
        fields["metadata"] = validation.metadata(body["metadata"])
    if "signedUpAt" in body:
        fields["signedUpAt"] = validation.optional_str(body, "signedUpAt", max_length=64)
    if "toBeRetained" in body:
        retained = body["toBeRetained"]
        if not isinstance(retained, bool):
            raise bad_request("toBeRetained must be a boolean")
        fields["toBeRetained"] = retained
    return fields


class UserRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        return [
            *routes_for("POST", "/users", self.create),
            *routes_for("GET", "/users/{userIdOrExternalId}", self.get),
            *routes_for("PATCH", "/users/{userIdOrExternalId}", self.update),
        ]

    async def create(self, request: web.Request) -> web.Response:
        body = validation.require_object(await read_json(request))
        external_id = validation.optional_str(body, "externalId", max_length=1024, nullable=False)
        fields = _common_fields(body)
        user = self.api.state.create_user(
            external_id=external_id,
            profile=fields.get("profile", {}),
            metadata=fields.get("metadata"),
            signed_up_at=fields.get("signedUpAt"),
            to_be_retained=fields.get("toBeRetained"),
        )
        return json_response({"user": user_json(user)}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        user = self.api.state.get_user(request.match_info["userIdOrExternalId"])
        return json_response({"user": user_json(user)})

    async def update(self, request: web.Request) -> web.Response:
        state = self.api.state
        user = state.get_user(request.match_info["userIdOrExternalId"])
        body = validation.require_object(await read_json(request))
        state.update_user(user, _common_fields(body))
        return json_response({"user": user_json(user)})
