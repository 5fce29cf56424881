"""Intercom → Zendesk ⇄ Salesforce through real Kafka, a worker process and the three sandboxes,
with the shipped three-way rules (``config/intercom-zendesk-salesforce.example.yaml``), once
with Salesforce Change Data Capture over the Pub/Sub API and once over CometD.

One conversation goes the whole way: escalated in Intercom, it becomes one Zendesk ticket and
one Salesforce Case holding the same link; a comment made on each of the three (a customer's
reply in Intercom, an agent's public reply in Zendesk, a person's published CaseComment in
Salesforce) is counted on the other two, where it must be exactly once; a Case closed in
Salesforce solves the ticket and closes the conversation; and once everything has converged,
the worker writes nothing more to any of the three (no loop).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from app.rehearsal import SyncStack, Transport, sync_stack
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

QUIET_S = 8.0  # longer than the Salesforce polls (1 s) and the worker's retries


@pytest.fixture(params=["pubsub", "cometd"])
def transport(request: pytest.FixtureRequest) -> Transport:
    chosen: Transport = request.param
    return chosen


@pytest.fixture
async def stack(
    transport: Transport, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    folder = tmp_path_factory.mktemp(f"three-way-{transport}")
    async with sync_stack(
        kafka_bootstrap_servers, folder, name=f"three-way-{transport}", salesforce=transport
    ) as running:
        yield running


class Counts:
    """How many times a text appears on each platform, read through their public APIs."""

    def __init__(self, stack: SyncStack, conversation: str, ticket_id: int, case_id: str):
        self.stack = stack
        self.conversation = conversation
        self.ticket_id = ticket_id
        self.case_id = case_id

    async def intercom(self, text: str) -> int:
        conversation = await self.stack.conversation(self.conversation)
        parts = conversation["conversation_parts"]["conversation_parts"]
        bodies = [conversation["source"]["body"], *(p.get("body") or "" for p in parts)]
        return sum(text in body for body in bodies)

    async def zendesk(self, text: str) -> int:
        return sum(text in c["body"] for c in await self.stack.comments(self.ticket_id))

    async def salesforce(self, text: str) -> int:
        comments = await self.stack.case_comments(self.case_id)
        return sum(text in (c["CommentBody"] or "") for c in comments)

    async def everywhere(self, text: str) -> dict[str, int]:
        return {
            "intercom": await self.intercom(text),
            "zendesk": await self.zendesk(text),
            "salesforce": await self.salesforce(text),
        }


async def _on_all(counts: Counts, text: str) -> dict[str, int] | None:
    found = await counts.everywhere(text)
    return found if all(found.values()) else None


async def test_three_members_comments_status_and_no_loops(
    stack: SyncStack, transport: Transport
) -> None:
    tag = uuid.uuid4().hex[:8]
    customer = IntercomCustomer(stack.ic, email=f"ines-{tag}@example.com", name="Ines Moreau")
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    agent = ZendeskAgent(stack.zd_agent)
    person = stack.console()

    conversation = await customer.start_conversation(f"My router keeps rebooting {tag}")
    await admin.tag(conversation, "escalate")
    link = stack.link(conversation)
    ticket = await stack.eventually(lambda: stack.ticket_for(conversation), "the ticket")
    case = await stack.eventually(lambda: stack.case_for(link), "the Case", within=120)
    # One ticket and one Case, linked to each other through the link they both hold.
    assert ticket["external_id"] == link
    assert case["Deskstream_Link_Id__c"] == link
    counts = Counts(stack, conversation, int(ticket["id"]), str(case["Id"]))

    said = {
        "intercom": f"customer reply {tag}",
        "zendesk": f"agent public reply {tag}",
        "salesforce": f"case comment by a person {tag}",
    }
    await customer.reply(conversation, said["intercom"])
    await agent.reply(int(ticket["id"]), said["zendesk"])
    await person.comment(str(case["Id"]), said["salesforce"], published=True)
    for origin, text in said.items():

        async def arrived(text: str = text) -> dict[str, int] | None:
            return await _on_all(counts, text)

        await stack.eventually(arrived, f"{origin}'s comment on all three", within=120)

    await person.set_status(str(case["Id"]), "Closed")

    async def closed_everywhere() -> bool:
        status = ((await stack.ticket_for(conversation)) or {}).get("status")
        state = (await stack.conversation(conversation))["state"]
        return (status, state) == ("solved", "closed")

    await stack.eventually(closed_everywhere, "Closed in Salesforce → solved and closed")

    await stack.settle(3.0)
    start = time.monotonic()
    quiet = await stack.quiet_window(QUIET_S)
    writes = stack.worker_writes(start)
    final = {origin: await counts.everywhere(text) for origin, text in said.items()}
    reads = len(quiet) - len(writes)
    print(
        f"\n[three-way {stack.settings.app_id}] comments per platform: {final}; "
        f"quiet window {QUIET_S:.0f} s: {len(writes)} writes, {reads} reads"
    )
    # The Case's changes came over the transport under test (the other stays unused).
    assert stack.salesforce is not None
    delivered = stack.salesforce.counters()
    print(
        f"[three-way] change events delivered: pubsub={delivered['pubsub_delivered']} "
        f"cometd={delivered['cometd_delivered']}"
    )
    other = "cometd" if transport == "pubsub" else "pubsub"
    assert delivered[f"{transport}_delivered"] > 0
    assert delivered[f"{other}_delivered"] == 0
    for origin, found in final.items():
        assert found == {"intercom": 1, "zendesk": 1, "salesforce": 1}, (origin, found)
    assert writes == [], "\n".join(str(w) for w in writes)
    assert (await stack.case_for(link) or {}).get("Status") == "Closed"
    assert ((await stack.ticket_for(conversation)) or {}).get("status") == "solved"
