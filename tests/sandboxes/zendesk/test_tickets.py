"""Tickets over HTTP: create, show, update, delete, list, comments, fields, bulk jobs."""

from __future__ import annotations

from typing import Any

import pytest

from sandboxes.base import ManualClock
from tests.sandboxes.zendesk.conftest import ZendeskEnv, serve

PLAN, LINK, ESCALATED, ORDER, TOPICS = (
    360001000001,
    360001000002,
    360001000003,
    360001000004,
    360001000005,
)


def field_value(ticket: dict[str, Any], field_id: int) -> Any:
    return next(f["value"] for f in ticket["custom_fields"] if f["id"] == field_id)


async def test_create_returns_201_ticket_audit_and_location(zendesk: ZendeskEnv) -> None:
    response = await zendesk.http.post(
        "/api/v2/tickets",
        json={"ticket": {"subject": "Help", "comment": {"body": "Line one"}, "priority": "high"}},
    )
    assert response.status_code == 201
    body = response.json()
    ticket = body["ticket"]
    assert response.headers["Location"] == f"{zendesk.url}/api/v2/tickets/{ticket['id']}.json"
    assert ticket["status"] == "new"
    assert ticket["priority"] == "high"
    assert ticket["description"] == "Line one"
    assert ticket["via"]["channel"] == "api"
    integration = zendesk.sandbox.core.integration_user.id
    assert ticket["requester_id"] == ticket["submitter_id"] == integration
    assert body["audit"]["author_id"] == integration
    assert body["audit"]["via"]["channel"] == "api"
    shown = await zendesk.http.get(f"/api/v2/tickets/{ticket['id']}.json")
    assert shown.json()["ticket"] == ticket


async def test_create_without_comment_is_422(zendesk: ZendeskEnv) -> None:
    response = await zendesk.http.post("/api/v2/tickets", json={"ticket": {"subject": "x"}})
    assert response.status_code == 422
    assert response.json()["error"] == "RecordInvalid"
    assert zendesk.sandbox.core.state.tickets == {}


async def test_requester_object_creates_the_user_once(zendesk: ZendeskEnv) -> None:
    first = await zendesk.create_ticket(requester={"name": "Ann", "email": "ann@example.com"})
    second = await zendesk.create_ticket(requester={"name": "Ann B", "email": "ANN@example.com"})
    assert first["requester_id"] == second["requester_id"]
    user = (await zendesk.http.get(f"/api/v2/users/{first['requester_id']}")).json()["user"]
    assert (user["name"], user["email"], user["role"]) == ("Ann", "ann@example.com", "end-user")


async def test_assignee_opens_a_new_ticket_and_closed_prevents_update(zendesk: ZendeskEnv) -> None:
    agent = zendesk.sandbox.core.admin.id
    ticket = await zendesk.create_ticket()
    url = f"/api/v2/tickets/{ticket['id']}"
    updated = await zendesk.http.put(url, json={"ticket": {"assignee_id": agent}})
    assert updated.json()["ticket"]["status"] == "open"
    await zendesk.http.put(url, json={"ticket": {"status": "closed"}})
    refused = await zendesk.http.put(url, json={"ticket": {"subject": "again"}})
    assert refused.status_code == 422
    assert "closed prevents ticket update" in refused.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"status": "bogus"}, "base", id="status"),
        pytest.param({"priority": "asap"}, "base", id="priority"),
        pytest.param({"assignee_id": 999}, "assignee", id="unknown-assignee"),
        pytest.param({"comment": {"body": "x", "author_id": 999}}, "author", id="unknown-author"),
    ],
)
async def test_invalid_updates_are_422_and_change_nothing(
    zendesk: ZendeskEnv, change: dict[str, Any], field: str
) -> None:
    ticket = await zendesk.create_ticket(subject="Keep")
    url = f"/api/v2/tickets/{ticket['id']}"
    response = await zendesk.http.put(url, json={"ticket": {"subject": "Changed", **change}})
    assert response.status_code == 422
    assert field in response.json()["details"]
    after = (await zendesk.http.get(url)).json()["ticket"]
    assert after == ticket


async def test_comments_public_and_internal_with_author_and_time(zendesk: ZendeskEnv) -> None:
    ticket = await zendesk.create_ticket(requester={"name": "Bo", "email": "bo@example.com"})
    url = f"/api/v2/tickets/{ticket['id']}"
    zendesk.clock.advance(90)
    await zendesk.http.put(url, json={"ticket": {"comment": {"body": "note", "public": False}}})
    zendesk.clock.advance(30)
    customer = ticket["requester_id"]
    await zendesk.http.put(
        url,
        json={
            "ticket": {
                "comment": {
                    "html_body": "<p>Thanks &amp; bye</p>",
                    "author_id": customer,
                    "public": False,
                }
            }
        },
    )
    comments = (await zendesk.http.get(f"{url}/comments")).json()["comments"]
    summary = [(c["body"], c["public"], c["author_id"], c["created_at"]) for c in comments]
    integration = zendesk.sandbox.core.integration_user.id
    assert summary == [
        ("It smokes.", True, integration, "2025-01-01T00:00:00Z"),
        ("note", False, integration, "2025-01-01T00:01:30Z"),
        # An end user cannot write an internal note: Zendesk makes it public.
        ("Thanks & bye", True, customer, "2025-01-01T00:02:00Z"),
    ]


async def test_comment_cap_is_422_but_other_updates_still_work(clock: ManualClock) -> None:
    async with serve(clock, max_comments=2) as env:
        ticket = await env.create_ticket()
        url = f"/api/v2/tickets/{ticket['id']}"
        ok = await env.http.put(url, json={"ticket": {"comment": {"body": "second"}}})
        assert ok.status_code == 200
        capped = await env.http.put(url, json={"ticket": {"comment": {"body": "third"}}})
        assert capped.status_code == 422
        assert capped.json()["error"] == "RecordInvalid"
        still = await env.http.put(url, json={"ticket": {"priority": "low"}})
        assert still.status_code == 200


async def test_dropdown_value_sets_its_tag_and_unknown_value_is_dropped(
    zendesk: ZendeskEnv,
) -> None:
    ticket = await zendesk.create_ticket(
        tags=["vip"],
        custom_fields=[{"id": PLAN, "value": "plan_pro"}, {"id": ESCALATED, "value": True}],
    )
    assert field_value(ticket, PLAN) == "plan_pro"
    assert sorted(ticket["tags"]) == ["ai_escalated", "plan_pro", "vip"]
    url = f"/api/v2/tickets/{ticket['id']}"
    kept = await zendesk.http.put(
        url, json={"ticket": {"custom_fields": [{"id": PLAN, "value": "gold"}]}}
    )
    assert kept.status_code == 200
    assert field_value(kept.json()["ticket"], PLAN) == "plan_pro"
    moved = await zendesk.http.put(
        url, json={"ticket": {"custom_fields": [{"id": PLAN, "value": "plan_basic"}]}}
    )
    assert sorted(moved.json()["ticket"]["tags"]) == ["ai_escalated", "plan_basic", "vip"]


async def test_strict_account_rejects_values_outside_the_allowed_set(clock: ManualClock) -> None:
    async with serve(clock, invalid_option_policy="reject") as env:
        response = await env.http.post(
            "/api/v2/tickets",
            json={
                "ticket": {
                    "comment": {"body": "x"},
                    "custom_fields": [{"id": PLAN, "value": "gold"}],
                }
            },
        )
        assert response.status_code == 422
        detail = response.json()["details"]["base"][0]
        assert (detail["ticket_field_id"], detail["ticket_field_type"]) == (PLAN, "FieldTagger")


@pytest.mark.parametrize(
    ("field_id", "value", "status", "stored"),
    [
        pytest.param(ORDER, "42", 201, "42", id="integer"),
        pytest.param(ORDER, "forty-two", 422, None, id="integer-invalid"),
        pytest.param(LINK, 12, 201, "12", id="text-coerced"),
        pytest.param(TOPICS, ["topic_billing", "nope"], 201, ["topic_billing"], id="multiselect"),
        pytest.param(999, "ignored", 201, None, id="unknown-field"),
    ],
)
async def test_custom_field_types(
    zendesk: ZendeskEnv, field_id: int, value: Any, status: int, stored: Any
) -> None:
    response = await zendesk.http.post(
        "/api/v2/tickets",
        json={
            "ticket": {
                "comment": {"body": "x"},
                "custom_fields": [{"id": field_id, "value": value}],
            }
        },
    )
    assert response.status_code == status
    if status == 201 and field_id != 999:
        assert field_value(response.json()["ticket"], field_id) == stored


async def test_ticket_fields_list_custom_fields_with_allowed_values(zendesk: ZendeskEnv) -> None:
    fields = (await zendesk.http.get("/api/v2/ticket_fields")).json()["ticket_fields"]
    by_id = {f["id"]: f for f in fields}
    assert [o["value"] for o in by_id[PLAN]["custom_field_options"]] == [
        "plan_basic",
        "plan_pro",
        "plan_enterprise",
    ]
    assert {f["type"] for f in fields} >= {"subject", "status", "priority", "tagger", "checkbox"}


async def test_tags_additional_and_remove(zendesk: ZendeskEnv) -> None:
    ticket = await zendesk.create_ticket(tags=["a", "b"])
    url = f"/api/v2/tickets/{ticket['id']}"
    response = await zendesk.http.put(
        url, json={"ticket": {"additional_tags": ["c"], "remove_tags": ["a"]}}
    )
    assert response.json()["ticket"]["tags"] == ["b", "c"]


async def test_safe_update_with_stale_stamp_is_409(zendesk: ZendeskEnv) -> None:
    ticket = await zendesk.create_ticket()
    url = f"/api/v2/tickets/{ticket['id']}"
    zendesk.clock.advance(5)
    await zendesk.http.put(url, json={"ticket": {"priority": "high"}})
    stale = await zendesk.http.put(
        url,
        json={
            "ticket": {
                "priority": "low",
                "safe_update": True,
                "updated_stamp": ticket["updated_at"],
            }
        },
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "UpdateConflict"


async def test_delete_then_404_and_external_id_lookup(zendesk: ZendeskEnv) -> None:
    kept = await zendesk.create_ticket(external_id="link-1")
    gone = await zendesk.create_ticket(external_id="link-1")
    assert (await zendesk.http.delete(f"/api/v2/tickets/{gone['id']}")).status_code == 204
    missing = await zendesk.http.get(f"/api/v2/tickets/{gone['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"error": "RecordNotFound", "description": "Not found"}
    found = (await zendesk.http.get("/api/v2/tickets", params={"external_id": "link-1"})).json()
    assert [t["id"] for t in found["tickets"]] == [kept["id"]]


async def test_list_pagination_cursor_and_offset(zendesk: ZendeskEnv) -> None:
    ids = [(await zendesk.create_ticket(subject=f"t{i}"))["id"] for i in range(5)]
    seen: list[int] = []
    page = (await zendesk.http.get("/api/v2/tickets", params={"page[size]": 2})).json()
    while True:
        seen += [t["id"] for t in page["tickets"]]
        if not page["meta"]["has_more"]:
            break
        page = (await zendesk.http.get(page["links"]["next"])).json()
    assert seen == ids
    offset = (await zendesk.http.get("/api/v2/tickets", params={"per_page": 2, "page": 3})).json()
    assert ([t["id"] for t in offset["tickets"]], offset["count"]) == (ids[4:], 5)
    assert offset["next_page"] is None


async def test_a_cursor_without_page_size_is_ignored_and_offset_answers(
    zendesk: ZendeskEnv,
) -> None:
    """ "Pagination": cursor pagination needs ``page[size]``; "If you omit the page[size]
    parameter, offset pagination is used". ``links.next`` keeps ``page[size]``."""
    ids = [(await zendesk.create_ticket(subject=f"t{i}"))["id"] for i in range(3)]
    first = (await zendesk.http.get("/api/v2/tickets", params={"page[size]": 1})).json()
    assert "page%5Bsize%5D=1" in first["links"]["next"] or "page[size]=1" in first["links"]["next"]
    cursor = first["meta"]["after_cursor"]
    bare = (await zendesk.http.get("/api/v2/tickets", params={"page[after]": cursor})).json()
    assert "meta" not in bare
    assert [t["id"] for t in bare["tickets"]] == ids
    assert bare["count"] == 3


async def test_create_many_and_update_many_report_through_job_status(zendesk: ZendeskEnv) -> None:
    created = await zendesk.http.post(
        "/api/v2/tickets/create_many",
        json={
            "tickets": [
                {"subject": "a", "comment": {"body": "a"}},
                {"subject": "b"},  # no comment: this one fails
            ]
        },
    )
    job = created.json()["job_status"]
    assert (created.status_code, job["status"]) == (200, "queued")
    done = (await zendesk.http.get(f"/api/v2/job_statuses/{job['id']}")).json()["job_status"]
    assert done["status"] == "completed"
    ok, failed = done["results"]
    assert ok["index"] == 0
    assert failed["success"] is False
    updated = await zendesk.http.put(
        "/api/v2/tickets/update_many",
        params={"ids": f"{ok['id']},424242"},
        json={"ticket": {"status": "solved"}},
    )
    results = (await zendesk.http.get(updated.json()["job_status"]["url"])).json()
    assert [r["success"] for r in results["job_status"]["results"]] == [True, False]
    ticket = (await zendesk.http.get(f"/api/v2/tickets/{ok['id']}")).json()["ticket"]
    assert ticket["status"] == "solved"
