"""Intercom → Zendesk ⇄ Salesforce through real Kafka, a worker process and the three sandboxes,
with the shipped three-way rules (``config/intercom-zendesk-salesforce.example.yaml``), once
with Salesforce Change Data Capture over the Pub/Sub API and once over CometD.

One conversation goes the whole way: escalated in Intercom, it becomes one Zendesk ticket and
one Salesforce Case holding the same link; a comment made on each of the three (a customer's
reply in Intercom, an agent's public reply in Zendesk, a person's published CaseComment in
Salesforce) is counted on the other two, where it must be exactly once; the ticket assigned
to an agent in Zendesk makes the same person (by email) owner of the Case and assignee of the
conversation, and the Case given to another agent in Salesforce moves the ticket and the
conversation to them, one write per record each time; a Case closed in Salesforce solves the
ticket and closes the conversation; and once everything has converged, the worker writes
nothing more to any of the three (no loop).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx
import pytest

from app.rehearsal import SyncStack, Transport, sync_stack
from sandboxes.base.staff import SHARED
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.salesforce.actors import SalesforceConsoleUser
from sandboxes.zendesk.actors import ZendeskAgent
from tests.dashboard_queries import dashboard_queries, exported, load_dashboard, problems

T = TypeVar("T")

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


def _writes_by_platform(stack: SyncStack, since: float) -> dict[str, int]:
    return dict(Counter(w.platform for w in stack.worker_writes(since)))


async def _agent_lookups(stack: SyncStack) -> dict[str, float]:
    """The worker's ``deskstream_agent_lookups_total`` by platform, direction and outcome."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{stack.worker.url}/metrics")).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("deskstream_agent_lookups_total{"):
            labels, _, value = line.partition("} ")
            found[labels.removeprefix("deskstream_agent_lookups_total{")] = float(value)
    return found


async def _owners_follow(
    stack: SyncStack,
    counts: Counts,
    conversation: str,
    agent: ZendeskAgent,
    person: SalesforceConsoleUser,
) -> None:
    """Ada is assigned the ticket in Zendesk: she owns the Case and the conversation too, one
    write each. A person gives the Case to Ben in Salesforce: the ticket and the conversation
    follow, one write each. Three ids per person, matched by email (``sandboxes.base.staff``)."""
    ada, ben = SHARED[0].email, SHARED[1].email
    admins = (await stack.ic.get("/admins")).json()["admins"]
    intercom = {a["email"]: str(a["id"]) for a in admins}
    zendesk = {e: await agent.agent_id(e) for e in (ada, ben)}
    salesforce = {e: await person.user_for(e) for e in (ada, ben)}

    async def owners() -> tuple[Any, Any, Any]:
        ticket = await stack.ticket_for(conversation) or {}
        case = await person.case(counts.case_id)
        conv = await stack.conversation(conversation)
        return ticket.get("assignee_id"), case["OwnerId"], str(conv["admin_assignee_id"])

    async def everywhere(change: Awaitable[None], email: str) -> dict[str, int]:
        """The worker's writes, by platform, until ``email``'s agent owns all three."""
        start = time.monotonic()
        await change
        want = (zendesk[email], salesforce[email], intercom[email])
        await stack.eventually(lambda: _when(owners(), want), f"{email} owns all three")
        await stack.settle(2.0)
        return _writes_by_platform(stack, start)

    assigned = await everywhere(agent.assign(counts.ticket_id, zendesk[ada]), ada)
    reassigned = await everywhere(person.set_owner(counts.case_id, salesforce[ben]), ben)
    lookups = await _agent_lookups(stack)
    print(
        f"\n[three-way owners] worker writes: assign in Zendesk {assigned}, reassign in "
        f"Salesforce {reassigned}; agent lookups {lookups}"
    )
    # One owner write to each other record, none back to the one a person changed.
    assert assigned == {"salesforce": 1, "intercom": 1}
    assert reassigned == {"zendesk": 1, "intercom": 1}


async def _when(probe: Awaitable[T], wanted: T) -> T | None:
    found = await probe
    return found if found == wanted else None


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

    await _owners_follow(stack, counts, conversation, agent, person)

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
    await _dashboard_reads_what_the_worker_exports(stack)


async def _dashboard_reads_what_the_worker_exports(stack: SyncStack) -> None:
    """The Grafana dashboard against this worker's /metrics after the run: every metric a
    panel queries is exported, with the labels the panel groups and filters by; the metrics
    measured off the event path (budgets, lag, dead letters, leases) have samples."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{stack.worker.url}/metrics")
    answer.raise_for_status()
    worker = exported(answer.text)
    assert problems(dashboard_queries(load_dashboard()), worker) == []
    calls = [
        line for line in answer.text.splitlines() if line.startswith("deskstream_rate_budget_calls")
    ]
    budgets = {p: sum(f'platform="{p}"' in line for line in calls) for p in _PLATFORMS}
    assert budgets == dict.fromkeys(_PLATFORMS, 1), calls  # one budget per sink's connector
    assert {"normalize", "sync"} <= _label_values(answer.text, "deskstream_consumer_lag_records")
    assert "deskstream_dlq_depth 0.0" in answer.text.splitlines()  # measured: nothing failed
    assert _label_values(answer.text, "deskstream_source_running") >= {
        "salesforce.cdc_case",
        "salesforce.comments",
    }


_PLATFORMS = ("intercom", "salesforce", "zendesk")


def _label_values(exposition: str, metric: str) -> set[str]:
    """The first label's values among ``metric``'s samples."""
    return {line.split('"')[1] for line in exposition.splitlines() if line.startswith(metric + "{")}
