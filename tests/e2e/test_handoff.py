"""AI hand-offs end to end: ``POST /handoff`` on a real worker, real Kafka, the Zendesk sandbox.

The AI client posts a hand-off (twice: a client retrying), the raw request and the sync event
are replayed (redeliveries at both stages), and the customer already has a Zendesk user: there
must be exactly one ticket, its only comment the internal context note, the reason in its
custom field, the group of the customer's segment, the existing user as requester (no second
user), and an audit trail telling the story. Counts, not times.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.rehearsal import SyncStack, sync_stack
from app.rehearsal_handoff import (
    ENTERPRISE_GROUP,
    REASON_FIELD,
    handoff_body,
    handoff_link,
    handoff_stack_options,
    post_handoff,
)
from tests.app.test_worker_e2e import _replay_raw

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

KEY = "e2e-handoff-key"


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path_factory.mktemp("handoff"),
        name="handoff",
        **handoff_stack_options(KEY),
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
