"""Inbox behaviour over HTTP: state transitions, validation errors, admin endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandboxes.base import ManualClock, run_sandboxes
from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv, make_sandbox

ADMIN = "991267002"


async def start(env: IntercomEnv) -> tuple[str, str]:
    contact = (await env.http.post("/contacts", json={"email": "flow@example.com"})).json()
    message = (
        await env.http.post(
            "/conversations", json={"from": {"type": "user", "id": contact["id"]}, "body": "hi"}
        )
    ).json()
    return contact["id"], message["conversation_id"]


async def test_replies_drive_waiting_since_and_reopening(intercom: IntercomEnv) -> None:
    contact_id, cid = await start(intercom)
    created = (await intercom.http.get(f"/conversations/{cid}")).json()
    assert created["waiting_since"] == created["created_at"]
    assert created["source"]["author"] == {
        "type": "user",
        "id": contact_id,
        "name": None,
        "email": "flow@example.com",
    }

    intercom.clock.advance(30)
    answered = (
        await intercom.http.post(
            f"/conversations/{cid}/reply",
            json={"message_type": "comment", "type": "admin", "admin_id": ADMIN, "body": "hey"},
        )
    ).json()
    assert answered["waiting_since"] is None
    assert answered["updated_at"] == created["created_at"] + 30
    assert answered["teammates"]["teammates"] == [{"type": "admin", "id": ADMIN}]

    await intercom.http.post(
        f"/conversations/{cid}/parts",
        json={"message_type": "close", "type": "admin", "admin_id": ADMIN},
    )
    intercom.clock.advance(30)
    reopened = (
        await intercom.http.post(
            f"/conversations/{cid}/reply",
            json={
                "message_type": "comment",
                "type": "user",
                "intercom_user_id": contact_id,
                "body": "still broken",
            },
        )
    ).json()
    assert (reopened["state"], reopened["open"]) == ("open", True)
    assert reopened["waiting_since"] == created["created_at"] + 60
    assert reopened["statistics"]["count_reopens"] == 1
    parts = reopened["conversation_parts"]["conversation_parts"]
    assert [p["part_type"] for p in parts] == ["comment", "close", "comment"]
    assert parts[-1]["body"] == "<p>still broken</p>"


async def test_assign_and_unassign(intercom: IntercomEnv) -> None:
    _, cid = await start(intercom)
    url = f"/conversations/{cid}/parts"
    base = {"message_type": "assignment", "admin_id": ADMIN}
    assigned = (
        await intercom.http.post(url, json={**base, "type": "admin", "assignee_id": ADMIN})
    ).json()
    assert assigned["admin_assignee_id"] == int(ADMIN)
    assert assigned["conversation_parts"]["conversation_parts"][-1]["assigned_to"] == {
        "type": "admin",
        "id": ADMIN,
    }
    team = (
        await intercom.http.post(url, json={**base, "type": "team", "assignee_id": "5017691"})
    ).json()
    assert team["team_assignee_id"] == 5017691
    cleared = (
        await intercom.http.post(url, json={**base, "type": "admin", "assignee_id": "0"})
    ).json()
    assert cleared["admin_assignee_id"] is None
    assert cleared["team_assignee_id"] == 5017691


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        (
            "parts",
            {"message_type": "snoozed", "admin_id": ADMIN, "snoozed_until": 1},
            400,
            "parameter_invalid",
        ),
        (
            "parts",
            {"message_type": "close", "type": "admin", "admin_id": "42"},
            404,
            "admin_not_found",
        ),
        ("parts", {"message_type": "explode", "admin_id": ADMIN}, 400, "parameter_invalid"),
        (
            "parts",
            {
                "message_type": "assignment",
                "type": "admin",
                "admin_id": ADMIN,
                "assignee_id": "777",
            },
            404,
            "assignee_not_found",
        ),
        (
            "reply",
            {"message_type": "comment", "type": "admin", "admin_id": ADMIN},
            400,
            "parameter_not_found",
        ),
        (
            "reply",
            {
                "message_type": "comment",
                "type": "admin",
                "admin_id": ADMIN,
                "body": "x",
                "attachment_urls": [f"https://f.example/{n}.png" for n in range(11)],
            },
            400,
            "parameter_invalid",
        ),
        (
            "reply",
            {"message_type": "comment", "type": "user", "email": "nobody@example.com", "body": "x"},
            404,
            "not_found",
        ),
        ("tags", {"id": "999", "admin_id": ADMIN}, 404, "tag_not_found"),
    ],
    ids=[
        "snooze-in-past",
        "unknown-admin",
        "unknown-message-type",
        "unknown-assignee",
        "reply-without-body",
        "too-many-attachments",
        "unknown-user",
        "unknown-tag",
    ],
)
async def test_invalid_requests(
    intercom: IntercomEnv, path: str, body: dict[str, Any], status: int, code: str
) -> None:
    _, cid = await start(intercom)
    response = await intercom.http.post(f"/conversations/{cid}/{path}", json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error.list"
    assert error["errors"][0]["code"] == code


async def test_invalid_json_body_is_a_400(intercom: IntercomEnv) -> None:
    response = await intercom.http.post("/contacts", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"


async def test_search_by_custom_attribute_and_tag(intercom: IntercomEnv) -> None:
    made = await intercom.http.post(
        "/data_attributes", json={"name": "plan", "model": "contact", "data_type": "string"}
    )
    assert made.status_code == 200
    assert made.json()["full_name"] == "custom_attributes.plan"
    gold = (
        await intercom.http.post(
            "/contacts", json={"email": "g@example.com", "custom_attributes": {"plan": "gold"}}
        )
    ).json()
    await intercom.http.post("/contacts", json={"email": "s@example.com"})
    wrong_type = await intercom.http.post(
        "/contacts", json={"email": "x@example.com", "custom_attributes": {"plan": 3}}
    )
    assert wrong_type.status_code == 400
    tag = (await intercom.http.post("/tags", json={"name": "vip"})).json()
    await intercom.http.post(f"/contacts/{gold['id']}/tags", json={"id": tag["id"]})
    for query in (
        {"field": "custom_attributes.plan", "operator": "=", "value": "gold"},
        {"field": "tag_id", "operator": "=", "value": tag["id"]},
    ):
        found = (await intercom.http.post("/contacts/search", json={"query": query})).json()
        assert [c["id"] for c in found["data"]] == [gold["id"]]
        assert found["total_count"] == 1


async def test_snapshot_and_reset(intercom: IntercomEnv) -> None:
    await start(intercom)
    snapshot = (await intercom.http.get("/_sandbox/snapshot")).json()
    assert len(snapshot["contacts"]) == 1
    assert len(snapshot["conversations"]) == 1
    state = (await intercom.http.get("/_sandbox/state")).json()
    assert state["platform_counters"]["notifications"] == {
        "contact.user.created": 1,
        "conversation.user.created": 1,
    }
    assert (await intercom.http.post("/_sandbox/reset")).status_code == 200
    emptied = (await intercom.http.get("/_sandbox/snapshot")).json()
    assert (emptied["contacts"], emptied["conversations"]) == ([], [])
    assert len(emptied["admins"]) == 3


async def test_a_new_contact_is_searchable_only_after_the_index_lag(clock: ManualClock) -> None:
    """OpenAPI 2.14, Search contacts, "Contact Creation Delay": a contact created recently
    may not be found by search for a few minutes; by id and external id it is found at once."""
    sandbox = make_sandbox(clock=clock, webhook_url=None, search_index_lag_s=120)
    async with run_sandboxes([sandbox]) as running:
        headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
        async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as http:
            made = await http.post(
                "/contacts", json={"email": "ivy@example.com", "external_id": "e-1"}
            )
            contact = made.json()
            query = {"query": {"field": "email", "operator": "=", "value": "ivy@example.com"}}

            async def found() -> list[str]:
                return [
                    c["id"]
                    for c in (await http.post("/contacts/search", json=query)).json()["data"]
                ]

            assert await found() == []
            assert (await http.get("/contacts/find_by_external_id/e-1")).json()["id"] == contact[
                "id"
            ]
            clock.advance(120)
            assert await found() == [contact["id"]]
