"""Users: create, create-or-update (200 existing / 201 new), show, update, (soft) delete, me,
search by query or external id, and secondary identities."""

from __future__ import annotations

from aiohttp import web

from sandboxes.zendesk.core import ZendeskCore, json_response, origin, principal, read_json
from sandboxes.zendesk.errors import bad_request, not_found
from sandboxes.zendesk.pagination import paginate
from sandboxes.zendesk.render import identity_json, user_json
from sandboxes.zendesk.routes_tickets import both
from sandboxes.zendesk.state import User

__all__ = ["user_routes"]

_USER = r"{user_id:\d+}"


class UserRoutes:
    def __init__(self, core: ZendeskCore) -> None:
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        return [
            *both("POST", "/api/v2/users", self.create),
            *both("POST", "/api/v2/users/create_or_update", self.create_or_update),
            *both("GET", "/api/v2/users/me", self.me),
            *both("GET", "/api/v2/users/search", self.search),
            *both("GET", f"/api/v2/users/{_USER}", self.show),
            *both("PUT", f"/api/v2/users/{_USER}", self.update),
            *both("DELETE", f"/api/v2/users/{_USER}", self.delete),
            *both("GET", f"/api/v2/users/{_USER}/identities", self.identities),
            *both("POST", f"/api/v2/users/{_USER}/identities", self.add_identity),
        ]

    def _user(self, request: web.Request) -> User:
        user = self.core.state.users.get(int(request.match_info["user_id"]))
        if user is None or not user.active:
            raise not_found()
        return user

    def _render(self, request: web.Request, user: User, status: int = 200) -> web.Response:
        return json_response({"user": user_json(user, origin=origin(request))}, status=status)

    async def create(self, request: web.Request) -> web.StreamResponse:
        payload = await read_json(request, "user")
        user, changes = self.core.users.create(payload)
        await self.core.publisher.user_events(user, changes)
        return self._render(request, user, 201)

    async def create_or_update(self, request: web.Request) -> web.StreamResponse:
        payload = await read_json(request, "user")
        existing = self.core.users.match(payload)
        if existing is None:
            user, changes = self.core.users.create(payload)
            await self.core.publisher.user_events(user, changes)
            return self._render(request, user, 201)
        changes = self.core.users.update(existing, payload)
        await self.core.publisher.user_events(existing, changes)
        return self._render(request, existing, 200)

    async def me(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, principal(request).user)

    async def show(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, self._user(request))

    async def update(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        payload = await read_json(request, "user")
        changes = self.core.users.update(user, payload)
        await self.core.publisher.user_events(user, changes)
        return self._render(request, user)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """200 with the user, now ``active: false`` (the spec's ``DeleteUserResponseExample``)."""
        user = self._user(request)
        changes = self.core.users.delete(user)
        await self.core.publisher.user_events(user, changes)
        return self._render(request, user)

    async def search(self, request: web.Request) -> web.StreamResponse:
        external_id = request.query.get("external_id")
        query = request.query.get("query")
        if external_id is not None:
            found = self.core.state.user_by_external_id(external_id)
            users = [found] if found is not None and found.active else []
        elif query is not None:
            users = self.core.users.search(query)
        else:
            raise bad_request("Provide either query or external_id")
        here = origin(request)
        return json_response(
            paginate(
                request,
                users,
                name="users",
                key=lambda u: u.id,
                render=lambda u: user_json(u, origin=here),
            )
        )

    async def identities(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        wanted = request.query.getall("type[]", [])
        identities = sorted(
            (i for i in self.core.state.identities_of(user.id) if not wanted or i.type in wanted),
            key=lambda i: (not i.primary, i.id),
        )
        here = origin(request)
        return json_response(
            paginate(
                request,
                identities,
                name="identities",
                key=lambda i: i.id,
                render=lambda i: identity_json(i, origin=here),
            )
        )

    async def add_identity(self, request: web.Request) -> web.StreamResponse:
        user = self._user(request)
        payload = await read_json(request, "identity")
        identity, changes = self.core.users.add_identity(user, payload)
        await self.core.publisher.user_events(user, changes)
        return json_response(
            {"identity": identity_json(identity, origin=origin(request))}, status=201
        )


def user_routes(core: ZendeskCore) -> list[web.RouteDef]:
    return UserRoutes(core).routes()
