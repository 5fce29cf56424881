"""Users: create (409 on a taken externalId), fetch by id or externalId, update."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.zendesk_conversations.harness import Harness


async def test_create_user_answers_201_with_the_user(sunshine: Harness) -> None:
    response = await sunshine.api.post(
        "/users",
        json={
            "externalId": "crm-42",
            "profile": {"givenName": "Ada", "surname": "Lovelace", "email": "ada@example.org"},
            "metadata": {"plan": "pro", "seats": 3, "vip": True},
        },
    )
    assert response.status_code == 201
    user = response.json()["user"]
    assert len(user["id"]) == 24
    assert user["externalId"] == "crm-42"
    assert user["profile"] == {
        "givenName": "Ada",
        "surname": "Lovelace",
        "email": "ada@example.org",
    }
    assert user["metadata"] == {"plan": "pro", "seats": 3, "vip": True}
    assert user["signedUpAt"] == "2025-03-01T09:00:00.000Z"


async def test_a_taken_external_id_answers_409_conflict(sunshine: Harness) -> None:
    await sunshine.create_user("crm-42")
    response = await sunshine.api.post("/users", json={"externalId": "crm-42"})
    assert response.status_code == 409
    assert response.json() == {"errors": [{"code": "conflict", "title": "User already exists"}]}


async def test_users_without_external_id_never_conflict(sunshine: Harness) -> None:
    first = await sunshine.create_user(None)
    second = await sunshine.create_user(None)
    assert first != second
    fetched = (await sunshine.api.get(f"/users/{first}")).json()["user"]
    assert "externalId" not in fetched


async def test_get_user_by_id_and_by_external_id_return_the_same_user(sunshine: Harness) -> None:
    user_id = await sunshine.create_user("crm-7")
    by_id = await sunshine.api.get(f"/users/{user_id}")
    by_external = await sunshine.api.get("/users/crm-7")
    assert by_id.status_code == by_external.status_code == 200
    assert by_id.json() == by_external.json()


async def test_unknown_user_answers_404_user_not_found(sunshine: Harness) -> None:
    response = await sunshine.api.get("/users/nobody")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": "user_not_found", "title": "User not found"}]}


async def test_update_merges_profile_fields_and_replaces_metadata(sunshine: Harness) -> None:
    await sunshine.create_user(
        "crm-9", profile={"givenName": "Ada", "locale": "en"}, metadata={"a": 1, "b": 2}
    )
    response = await sunshine.api.patch(
        "/users/crm-9",
        json={"profile": {"surname": "Byron", "locale": None}, "metadata": {"c": "x"}},
    )
    assert response.status_code == 200
    user = response.json()["user"]
    assert user["profile"] == {"givenName": "Ada", "surname": "Byron"}
    assert user["metadata"] == {"c": "x"}
    assert (await sunshine.api.get("/users/crm-9")).json()["user"] == user


async def test_update_of_unknown_user_answers_404(sunshine: Harness) -> None:
    response = await sunshine.api.patch("/users/nobody", json={"metadata": {}})
    assert response.status_code == 404


INVALID_BODIES: list[tuple[str, Any]] = [
    ("not-an-object", ["crm-1"]),
    ("empty-external-id", {"externalId": ""}),
    ("numeric-external-id", {"externalId": 42}),
    ("external-id-too-long", {"externalId": "x" * 1025}),
    ("profile-not-object", {"profile": "Ada"}),
    ("profile-email-invalid", {"profile": {"email": "not-an-email"}}),
    ("profile-name-too-long", {"profile": {"givenName": "x" * 129}}),
    ("metadata-nested", {"metadata": {"address": {"city": "Paris"}}}),
    ("metadata-list-value", {"metadata": {"tags": ["a"]}}),
    ("metadata-over-4kb", {"metadata": {"blob": "x" * 4100}}),
    ("to-be-retained-not-bool", {"toBeRetained": "yes"}),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in INVALID_BODIES])
async def test_invalid_user_bodies_answer_400_bad_request(sunshine: Harness, body: Any) -> None:
    response = await sunshine.api.post("/users", json=body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "bad_request"
    assert error["title"]


async def test_a_body_that_is_not_json_answers_400(sunshine: Harness) -> None:
    response = await sunshine.api.post(
        "/users", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"


async def test_json_bodies_over_100kb_are_refused(sunshine: Harness) -> None:
    response = await sunshine.api.post("/users", json={"externalId": "x", "pad": "y" * 110_000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "payload_too_large"
