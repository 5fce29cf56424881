"""AI hand-offs end to end: ``POST /handoff`` on a real worker, real Kafka, the Zendesk sandbox.

The AI client posts a hand-off (twice: a client retrying), the raw request and the sync event
are replayed (redeliveries at both stages), and the customer already has a Zendesk user: there
must be exactly one ticket, its only comment the internal context note, the reason in its
custom field, the group of the customer's segment, the existing user as requester (no second
user), and an audit trail telling the story. Counts, not times.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from app.rehearsal import SyncStack, sync_stack
from app.rehearsal_handoff import (
    ENTERPRISE_GROUP,
    REASON_FIELD,
    SUPPORT_TEAM,
    handoff_body,
    handoff_link,
    handoff_stack_options,
    post_handoff,
)
from app.worker_process import free_port
from connectors.base.links import case_link_id
from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from tests.app.test_worker_e2e import _replay_raw

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

KEY = "e2e-handoff-key"


FOLLOW_UP_S = 3.0


@pytest.fixture(scope="module")
async def callbacks() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """The AI client's callback endpoint: every follow-up it receives, with a valid signature."""
    received: list[dict[str, Any]] = []

    async def follow_up(request: web.Request) -> web.Response:
        body = await request.read()
        at = int(request.headers[TIMESTAMP_HEADER])
        assert request.headers[SIGNATURE_HEADER] == sign(KEY, at, body)
        received.append(json.loads(body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/followups", follow_up)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/followups", received
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    tmp_path_factory: pytest.TempPathFactory,
    callbacks: tuple[str, list[dict[str, Any]]],
) -> AsyncIterator[SyncStack]:
    options = handoff_stack_options(KEY, callback_url=callbacks[0], follow_up_seconds=FOLLOW_UP_S)
    async with sync_stack(
        kafka_bootstrap_servers, tmp_path_factory.mktemp("handoff"), name="handoff", **options
    ) as running:
        yield running


async def tickets_of(stack: SyncStack, link: str) -> list[dict[str, Any]]:
    response = await stack.zd_agent.get("/api/v2/tickets", params={"external_id": link})
    found: list[dict[str, Any]] = response.json()["tickets"]
    return found


async def test_a_handoff_makes_exactly_one_ticket_with_the_context_note(stack: SyncStack) -> None:
    run = uuid.uuid4().hex[:6]
    conversation, email = f"conv-{run}", f"ana-{run}@example.org"
    known = await stack.zd_agent.post(
        "/api/v2/users", json={"user": {"name": "Ana Núñez", "email": email}}
    )
    assert known.status_code == 201
    user_id = known.json()["user"]["id"]

    first = await post_handoff(stack, KEY, handoff_body(conversation, email))
    again = await post_handoff(stack, KEY, handoff_body(conversation, email))
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json() == again.json()

    link = handoff_link(conversation)
    [ticket] = await stack.eventually(lambda: tickets_of(stack, link), "the hand-off ticket")
    bootstrap = stack.settings.kafka_bootstrap_servers or ""
    # Redeliveries: the raw request (normalize drops it) and the event on the sync topic.
    assert await _replay_raw(bootstrap, stack.settings, conversation)
    assert await _replay_raw(bootstrap, stack.settings, link, topic="sync")
    await stack.settle()

    assert len(await tickets_of(stack, link)) == 1, await stack.trail(link)
    assert ticket["requester_id"] == user_id  # the customer's own user, found by email
    assert len(await stack.zendesk_users(email)) == 1
    assert ticket["group_id"] == ENTERPRISE_GROUP
    fields = {f["id"]: f["value"] for f in ticket["custom_fields"]}
    assert fields[REASON_FIELD] == "customer asked for a human"
    comments = await stack.comments(int(ticket["id"]))
    assert len(comments) == 1
    [note] = comments
    assert note["public"] is False
    for said in ("customer asked for a human", "order: A-1001", "I was charged twice"):
        assert said in note["body"]

    decided = [r.decision for r in await stack.audit(link)]
    assert decided.count("requested") == 1, await stack.trail(link)
    assert decided.count("upsert_case_on_zendesk") == 1
    assert "duplicate_dropped" in decided  # the replayed event reached the sync stage

    # `deskstream audit trace` tells the story: the request and what it carried, the ticket.
    process = await stack.command("audit", "trace", f"handoff:{conversation}")
    out, _ = await process.communicate()
    assert process.returncode == 0
    story = out.decode()
    for told in ("requested", "transcript_lines=2", "upsert_case_on_zendesk", str(ticket["id"])):
        assert told in story, story


async def handed_off_ticket(stack: SyncStack) -> tuple[str, int]:
    run = uuid.uuid4().hex[:6]
    conversation = f"conv-{run}"
    answer = await post_handoff(stack, KEY, handoff_body(conversation, f"ana-{run}@example.org"))
    assert answer.status_code == 200
    link = handoff_link(conversation)
    [ticket] = await stack.eventually(lambda: tickets_of(stack, link), "the hand-off ticket")
    return conversation, int(ticket["id"])


async def agent_changes(stack: SyncStack, ticket: int, **fields: Any) -> None:
    answer = await stack.zd_agent.put(f"/api/v2/tickets/{ticket}", json={"ticket": fields})
    assert answer.status_code == 200, answer.text


async def followed_once_not_after_takeover(
    stack: SyncStack, received: list[dict[str, Any]], waiting: str, taken: str, taken_link: str
) -> dict[str, Any]:
    """The waiting hand-off's one follow-up; the taken one's cancelled (none sent)."""

    def followed(conversation: str) -> list[dict[str, Any]]:
        return [r for r in received if r["conversation_id"] == conversation]

    async def first_follow_up() -> list[dict[str, Any]]:
        return followed(waiting)

    [follow_up] = await stack.eventually(first_follow_up, "the follow-up callback")
    await stack.settle(FOLLOW_UP_S + 2)  # the second timer is due by now, and any copy in
    assert len(followed(waiting)) == 1
    assert followed(taken) == [], await stack.trail(taken_link)
    decided = [r.decision for r in await stack.audit(taken_link)]
    assert "follow_up_cancelled" in decided
    assert "follow_up_dropped" in decided
    return follow_up


async def test_a_pending_ticket_is_followed_up_once_unless_a_human_took_over(
    stack: SyncStack, callbacks: tuple[str, list[dict[str, Any]]]
) -> None:
    received = callbacks[1]
    me = (await stack.zd_agent.get("/api/v2/users/me")).json()["user"]["id"]
    waiting, waiting_ticket = await handed_off_ticket(stack)
    taken, taken_ticket = await handed_off_ticket(stack)
    await agent_changes(stack, waiting_ticket, status="pending")
    await agent_changes(stack, taken_ticket, status="pending")
    # A person takes the second ticket before its follow-up is due.
    await agent_changes(stack, taken_ticket, assignee_id=me)

    follow_up = await followed_once_not_after_takeover(
        stack, received, waiting, taken, handoff_link(taken)
    )
    assert follow_up["record"] == str(waiting_ticket)


def intercom_link(conversation: str) -> str:
    """Where a hand-off in an Intercom conversation lives: the conversation's own link."""
    return case_link_id("intercom", "intercom", conversation)


async def handed_off_in_intercom(stack: SyncStack, *, posts: int = 1) -> str:
    """An Intercom conversation the AI handed off in place, once assigned to the team."""
    run = uuid.uuid4().hex[:6]
    customer = IntercomCustomer(stack.ic, email=f"ana-{run}@example.org", name="Ana Núñez")
    conversation = await customer.start_conversation("I was charged twice")
    body = handoff_body(conversation, f"ana-{run}@example.org", target="intercom_conversation")
    answers = [await post_handoff(stack, KEY, body) for _ in range(posts)]
    assert [a.status_code for a in answers] == [200] * posts

    async def assigned() -> dict[str, Any] | None:
        found = await stack.conversation(conversation)
        return found if found.get("team_assignee_id") else None

    await stack.eventually(assigned, "the conversation assigned to the team")
    return conversation


async def test_a_handoff_in_intercom_is_one_note_and_the_team_assignment(stack: SyncStack) -> None:
    conversation = await handed_off_in_intercom(stack, posts=2)
    await stack.settle()
    found = await stack.conversation(conversation)
    assert str(found["team_assignee_id"]) == str(SUPPORT_TEAM)
    parts = found["conversation_parts"]["conversation_parts"]
    notes = [p for p in parts if p["part_type"] == "note"]
    assert len(notes) == 1, await stack.trail(intercom_link(conversation))
    assert "customer asked for a human" in notes[0]["body"]
    assignment = next(p for p in parts if p["part_type"] == "assignment")
    assert parts.index(notes[0]) < parts.index(assignment)  # the note before the assignment


async def test_a_snoozed_intercom_handoff_is_followed_up_once_unless_a_human_took_over(
    stack: SyncStack, callbacks: tuple[str, list[dict[str, Any]]]
) -> None:
    received = callbacks[1]
    human = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    waiting = await handed_off_in_intercom(stack)
    taken = await handed_off_in_intercom(stack)
    until = int(time.time()) + 3600
    await human.snooze(waiting, until)
    await human.snooze(taken, until)
    # A person takes the second conversation before its follow-up is due.
    await human.assign(taken, stack.human_admin_id)

    follow_up = await followed_once_not_after_takeover(
        stack, received, waiting, taken, intercom_link(taken)
    )
    assert (follow_up["platform"], follow_up["record"]) == ("intercom", waiting)
