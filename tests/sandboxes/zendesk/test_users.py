"""Users: create-or-update matching, search by email/text/external id, identities."""

from __future__ import annotations

import pytest

from sandboxes.base import ManualClock
from tests.sandboxes.zendesk.conftest import ZendeskEnv, serve


async def test_create_or_update_is_201_then_200_matching_email(zendesk: ZendeskEnv) -> None:
    new = await zendesk.http.post(
        "/api/v2/users/create_or_update", json={"user": {"name": "Cy", "email": "cy@example.com"}}
    )
    assert new.status_code == 201
    same = await zendesk.http.post(
        "/api/v2/users/create_or_update",
        json={"user": {"name": "Cy Updated", "email": "CY@example.com"}},
    )
    assert same.status_code == 200
    assert same.json()["user"]["id"] == new.json()["user"]["id"]
    assert same.json()["user"]["name"] == "Cy Updated"


async def test_create_or_update_matches_external_id_before_email(zendesk: ZendeskEnv) -> None:
    first = await zendesk.http.post(
        "/api/v2/users/create_or_update",
        json={"user": {"name": "Di", "email": "di@example.com", "external_id": "crm-1"}},
    )
    moved = await zendesk.http.post(
        "/api/v2/users/create_or_update",
        json={"user": {"name": "Di", "email": "di.new@example.com", "external_id": "crm-1"}},
    )
    assert moved.status_code == 200
    user_id = first.json()["user"]["id"]
    assert moved.json()["user"]["id"] == user_id
    assert moved.json()["user"]["email"] == "di.new@example.com"
    identities = (await zendesk.http.get(f"/api/v2/users/{user_id}/identities")).json()
    values = [(i["value"], i["primary"]) for i in identities["identities"]]
    assert values == [("di.new@example.com", True), ("di@example.com", False)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"query": "email:eve@example.com"}, ["Eve"], id="email"),
        pytest.param({"query": "email:eve.alt@example.com"}, ["Eve"], id="secondary-email"),
        pytest.param({"query": "fr"}, ["Fred"], id="plain-text"),
        pytest.param({"query": 'name:"Fred"'}, ["Fred"], id="name"),
        pytest.param({"external_id": "crm-eve"}, ["Eve"], id="external-id"),
        pytest.param({"query": "external_id:crm-eve"}, ["Eve"], id="external-id-query"),
        pytest.param({"query": "email:nobody@example.com"}, [], id="miss"),
    ],
)
async def test_search(zendesk: ZendeskEnv, params: dict[str, str], expected: list[str]) -> None:
    eve = await zendesk.http.post(
        "/api/v2/users",
        json={"user": {"name": "Eve", "email": "eve@example.com", "external_id": "crm-eve"}},
    )
    await zendesk.http.post("/api/v2/users", json={"user": {"name": "Fred", "email": "f@x.org"}})
    added = await zendesk.http.post(
        f"/api/v2/users/{eve.json()['user']['id']}/identities",
        json={"identity": {"type": "email", "value": "eve.alt@example.com"}},
    )
    assert added.status_code == 201
    found = (await zendesk.http.get("/api/v2/users/search.json", params=params)).json()
    assert [u["name"] for u in found["users"]] == expected


@pytest.mark.parametrize(
    "user",
    [
        pytest.param({"name": "Dup", "email": "taken@example.com"}, id="duplicate-email"),
        pytest.param({"name": "", "email": "blank@example.com"}, id="blank-name"),
        pytest.param({"name": "Bad", "email": "not-an-email"}, id="malformed-email"),
        pytest.param({"name": "Bad", "role": "superuser"}, id="role"),
    ],
)
async def test_invalid_users_are_422(zendesk: ZendeskEnv, user: dict[str, str]) -> None:
    await zendesk.http.post(
        "/api/v2/users", json={"user": {"name": "T", "email": "taken@example.com"}}
    )
    before = len(zendesk.sandbox.core.state.users)
    response = await zendesk.http.post("/api/v2/users", json={"user": user})
    assert response.status_code == 422
    assert response.json()["error"] == "RecordInvalid"
    assert len(zendesk.sandbox.core.state.users) == before


async def test_me_is_the_token_owner(zendesk: ZendeskEnv) -> None:
    me = (await zendesk.http.get("/api/v2/users/me.json")).json()["user"]
    assert me["id"] == zendesk.sandbox.core.integration_user.id
    assert me["role"] == "admin"


async def test_a_new_user_is_searchable_only_after_the_index_lag(clock: ManualClock) -> None:
    """Search API: "It can take up to a few minutes for new ... users ... to be indexed for
    search"; lookups that are not search see the user at once."""
    async with serve(clock, search_index_lag_s=120) as zendesk:
        made = await zendesk.http.post(
            "/api/v2/users", json={"user": {"name": "Gus", "email": "gus@example.com"}}
        )
        user = made.json()["user"]
        by_email = {"query": "email:gus@example.com"}

        async def found() -> list[int]:
            answer = await zendesk.http.get("/api/v2/users/search", params=by_email)
            return [u["id"] for u in answer.json()["users"]]

        assert await found() == []
        assert (await zendesk.http.get("/api/v2/users/search", params={"query": "gus"})).json()[
            "users"
        ] == []
        # create_or_update matches it all the same: no second user for the same email
        again = await zendesk.http.post(
            "/api/v2/users/create_or_update",
            json={"user": {"name": "Gus B.", "email": "gus@example.com"}},
        )
        assert (again.status_code, again.json()["user"]["id"]) == (200, user["id"])
        clock.advance(120)
        assert await found() == [user["id"]]
