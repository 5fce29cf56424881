"""The sandbox's Ticket Import API (``POST /api/v2/imports/tickets``): a whole conversation
with each comment's author and time, admins only, no triggers, checked against the spec."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import httpx
from openapi_core import OpenAPI

from sandboxes.base import ManualClock
from sandboxes.zendesk import basic_header
from tests.sandboxes.zendesk.conftest import TOKEN, ZendeskEnv, serve
from tests.sandboxes.zendesk.test_contract import openapi, validate

__all__ = ["openapi"]  # the spec fixture, shared with the contract tests

PATH = "/api/v2/imports/tickets"


async def requester(env: ZendeskEnv, email: str = "maria@example.com") -> int:
    answer = await env.http.post("/api/v2/users", json={"user": {"name": "Maria", "email": email}})
    user_id: int = answer.json()["user"]["id"]
    return user_id


def thread(customer: int, agent: int) -> dict[str, Any]:
    return {
        "subject": "Refund",
        "requester_id": customer,
        "external_id": "lnk_import",
        "created_at": "2024-12-30T08:00:00Z",
        "tags": ["imported"],
        "comments": [
            {"author_id": customer, "created_at": "2024-12-30T08:00:00Z", "value": "No refund yet"},
            {
                "author_id": agent,
                "created_at": "2024-12-30T09:30:00Z",
                "body": "Checking with billing",
                "public": False,
            },
            {"author_id": agent, "created_at": "2024-12-31T10:00:00Z", "html_body": "<p>Done</p>"},
        ],
    }


async def test_import_keeps_authors_times_and_visibility(
    zendesk: ZendeskEnv, openapi: OpenAPI
) -> None:
    customer, agent = await requester(zendesk), zendesk.sandbox.core.admin.id
    answer = await zendesk.http.post(PATH, json={"ticket": thread(customer, agent)})
    assert answer.status_code == 201, answer.text
    # Response only: the spec reuses TicketCommentObject, whose created_at is read-only,
    # while the import docs set it ("You can also set the comment's created_at").
    validate(openapi, answer, check_request=False)
    ticket = answer.json()["ticket"]
    assert answer.headers["Location"].endswith(f"/api/v2/tickets/{ticket['id']}.json")
    assert (ticket["requester_id"], ticket["external_id"], ticket["created_at"]) == (
        customer,
        "lnk_import",
        "2024-12-30T08:00:00Z",
    )
    assert ticket["description"] == "No refund yet"
    listed = await zendesk.http.get(f"/api/v2/tickets/{ticket['id']}/comments")
    comments = listed.json()["comments"]
    assert [(c["author_id"], c["created_at"], c["public"], c["body"]) for c in comments] == [
        (customer, "2024-12-30T08:00:00Z", True, "No refund yet"),
        (agent, "2024-12-30T09:30:00Z", False, "Checking with billing"),
        (agent, "2024-12-31T10:00:00Z", True, "Done"),
    ]
    audits = (await zendesk.http.get(f"/api/v2/tickets/{ticket['id']}/audits")).json()["audits"]
    assert [a["created_at"] for a in audits] == [c["created_at"] for c in comments]
    found = await zendesk.http.get("/api/v2/tickets", params={"external_id": "lnk_import"})
    assert [t["id"] for t in found.json()["tickets"]] == [ticket["id"]]


async def test_import_attaches_uploads_and_has_no_idempotency(zendesk: ZendeskEnv) -> None:
    token = (
        await zendesk.http.post("/api/v2/uploads", params={"filename": "a.txt"}, content=b"abc")
    ).json()["upload"]["token"]
    body = {"ticket": {"comments": [{"value": "with file", "uploads": [token]}]}}
    headers = {"Idempotency-Key": "ignored-by-imports"}
    first = await zendesk.http.post(PATH, json=body, headers=headers)
    second = await zendesk.http.post(PATH, json=body, headers=headers)
    assert first.json()["ticket"]["id"] != second.json()["ticket"]["id"]
    assert "x-idempotency-lookup" not in first.headers
    listed = await zendesk.http.get(f"/api/v2/tickets/{first.json()['ticket']['id']}/comments")
    (comment,) = listed.json()["comments"]
    assert [a["file_name"] for a in comment["attachments"]] == ["a.txt"]


async def test_times_are_bounded(zendesk: ZendeskEnv) -> None:
    old = {"created_at": "1960-05-01T00:00:00Z", "comments": [{"value": "old"}]}
    answer = await zendesk.http.post(PATH, json={"ticket": old})
    assert answer.json()["ticket"]["created_at"] == "1970-01-01T00:00:00Z"  # rounded up
    future = {"comments": [{"value": "x", "created_at": "2999-01-01T00:00:00Z"}]}
    refused = await zendesk.http.post(PATH, json={"ticket": future})
    assert refused.status_code == 422
    assert refused.json()["error"] == "RecordInvalid"


async def test_refusals(zendesk: ZendeskEnv) -> None:
    before = len(zendesk.sandbox.core.state.tickets)
    empty = await zendesk.http.post(PATH, json={"ticket": {"subject": "x", "comments": []}})
    blank = await zendesk.http.post(PATH, json={"ticket": {"comments": [{"value": "  "}]}})
    bad_status = await zendesk.http.post(
        PATH, json={"ticket": {"status": "burning", "comments": [{"value": "x"}]}}
    )
    assert [r.status_code for r in (empty, blank, bad_status)] == [422, 422, 422]
    assert json.loads(empty.content)["details"]["description"][0]["error"] == "BlankValue"
    agent = await zendesk.http.post(
        "/api/v2/users", json={"user": {"name": "Al", "email": "al@example.com", "role": "agent"}}
    )
    assert agent.status_code == 201
    as_agent = {"Authorization": basic_header("al@example.com", TOKEN)}
    forbidden = await zendesk.http.post(
        PATH, json={"ticket": {"comments": [{"value": "x"}]}}, headers=as_agent
    )
    assert forbidden.status_code == 403  # "Allowed for: Admins"
    assert len(zendesk.sandbox.core.state.tickets) == before


async def test_import_sends_created_and_comment_events_but_can_be_told_not_to(
    clock: ManualClock, receiver: Any
) -> None:
    for emits, expected in ((True, {"created": 1, "comment_added": 3}), (False, {})):
        receiver.deliveries.clear()
        async with serve(clock, receiver, import_emits_events=emits) as env:
            customer = await requester(env)
            answer = await env.http.post(
                PATH, json={"ticket": thread(customer, env.sandbox.core.admin.id)}
            )
            assert answer.status_code == 201
            async with asyncio.timeout(10):
                await env.drain()
        events = [json.loads(d.body) for d in receiver.deliveries]
        tickets = Counter(
            e["type"].rsplit(".", 1)[1] for e in events if e["type"].startswith("zen:event-type:t")
        )
        assert tickets == expected
        integration = str(env.sandbox.core.integration_user.id)
        assert {e["detail"]["actor_id"] for e in events if "actor_id" in e["detail"]} <= {
            integration
        }


async def test_the_default_oauth_token_may_import(zendesk: ZendeskEnv) -> None:
    async with httpx.AsyncClient(
        base_url=zendesk.url, headers={"Authorization": "Bearer sandbox-oauth-token"}
    ) as oauth:
        answer = await oauth.post(PATH, json={"ticket": {"comments": [{"value": "x"}]}})
    assert answer.status_code == 201
