"""Polling beside webhooks (issue 14), through Kafka, a worker process and the sandboxes.

The worker runs Intercom in mode ``both``: webhooks, and the conversation and contact polls
every second. Mid-run Intercom's webhooks are switched off (the sandbox's ``webhooks_off``
fault: a deactivated webhook drops what falls due); what customers and admins do afterwards
must reach Zendesk through polling alone, each change once, and the changes both readers saw
before the switch must not be doubled either: a polled change has its webhook's event id
(``connectors.intercom.canonical``), so the canonical topic holds one event id per message.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.rehearsal import SyncStack, sync_stack
from sandboxes.base.faults import FaultProfile
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent
from schemas.models import EntityType, Envelope
from tests.cluster.leases import canonical_events

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

#: every poll once a second, reaching 5 s back (Intercom) or 70 s (Zendesk: its export's minute)
_KINDS = {"intercom": ("conversations", "contacts"), "zendesk": ("ticket_events", "users")}
#: the Zendesk sandbox's export holds back 1 s instead of a minute, and allows a poll a second
ZENDESK_EXPORTS = {"incremental_export_lag_s": 1.0, "incremental_export_per_minute": 600}


def polling_env(mode: str) -> dict[str, str]:
    env = {}
    for connector, kinds in _KINDS.items():
        env[f"DESKSTREAM_CONNECTORS__{connector}__MODE"] = mode
        for kind in kinds:
            prefix = f"DESKSTREAM_CONNECTORS__{connector}__SOURCES__{kind}__"
            env[prefix + "POLL_SECONDS"] = "1"
            env[prefix + "OVERLAP_SECONDS"] = "5"
            env[prefix + "START_LOOKBACK_SECONDS"] = "70"
            env[prefix + "REQUESTS_PER_MINUTE"] = "300"
    return env


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    folder = tmp_path_factory.mktemp("polling")
    async with sync_stack(
        kafka_bootstrap_servers,
        folder,
        name="polling",
        extra_env=polling_env("both"),
        zendesk_config=ZENDESK_EXPORTS,
    ) as running:
        yield running


def _texts(comments: list[dict[str, Any]]) -> list[str]:
    return [str(c.get("body") or "") for c in comments]


async def _escalate(stack: SyncStack, email: str, text: str) -> str:
    customer = IntercomCustomer(stack.ic, email=email, name="Customer")
    conversation = await customer.start_conversation(text)
    await IntercomAdmin(stack.ic, admin_id=stack.human_admin_id).tag(conversation, "escalate")
    return conversation


async def test_webhooks_switched_off_mid_run_polling_brings_every_change_in_once(
    stack: SyncStack, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    emails = [f"poll-{run}-{n}@example.com" for n in range(3)]
    before = [await _escalate(stack, e, f"order {e} lost") for e in emails]

    async def ticketed(conversations: list[str], comments: int) -> bool:
        for conversation in conversations:
            ticket = await stack.ticket_for(conversation)
            if ticket is None or len(await stack.comments(ticket["id"])) < comments:
                return False
        return True

    await stack.eventually(lambda: ticketed(before, 1), "a ticket per conversation")

    await stack.set_faults("intercom", FaultProfile(webhooks_off=True))
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    for conversation, email in zip(before, emails, strict=True):
        customer = IntercomCustomer(stack.ic, email=email, name="Customer")
        for n in range(2):
            await customer.reply(conversation, f"while-off {n} {conversation}")
        await admin.note(conversation, f"note-while-off {conversation}")
    late = await _escalate(stack, f"poll-{run}-late@example.com", f"late {run} escalation")

    # The opening message, two replies and a note on each; the late one's opening.
    await stack.eventually(lambda: ticketed(before, 4), "the changes made while off", within=90)
    await stack.eventually(lambda: ticketed([late], 1), "the ticket escalated while off")
    await stack.settle(6)  # several more polls: nothing may arrive twice

    state = await stack.sandbox_state("intercom")
    dropped = state["webhooks"]["dropped_by_state"].get("deactivated", 0)
    assert dropped >= len(before) * 3 + 2  # the switch really dropped those webhooks
    for conversation in before:
        ticket = await stack.ticket_for(conversation)
        assert ticket is not None
        texts = _texts(await stack.comments(ticket["id"]))
        assert len(texts) == 4, texts
        for wanted in (f"while-off 0 {conversation}", f"while-off 1 {conversation}"):
            assert sum(wanted in t for t in texts) == 1, texts
        assert sum(f"note-while-off {conversation}" in t for t in texts) == 1, texts
    late_ticket = await stack.ticket_for(late)
    assert late_ticket is not None
    assert (
        sum(f"late {run} escalation" in t for t in _texts(await stack.comments(late_ticket["id"])))
        == 1
    )
    listed = await stack.zd_agent.get("/api/v2/tickets", params={"per_page": 100})
    ours = {stack.link(c) for c in [*before, late]}
    assert sum(t.get("external_id") in ours for t in listed.json()["tickets"]) == 4

    # Every message of these conversations has one event id on the canonical topic, whether
    # it was pushed, polled, or both (before the switch, both readers saw every message).
    def ours_only(event: Envelope) -> bool:
        return (
            event.source.platform == "intercom"
            and event.source.entity_type is EntityType.MESSAGE
            and event.link_id in ours
        )

    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    events = await canonical_events(bootstrap, stack.settings.topic("events"), ours_only)
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        ids[event.source.entity_id].add(event.event_id)
    assert len(ids) == len(before) * 4 + 1
    assert {k: v for k, v in ids.items() if len(v) != 1} == {}
    await stack.set_faults("intercom", FaultProfile())


async def test_zendesk_webhooks_switched_off_agents_answers_reach_intercom_by_polling(
    stack: SyncStack,
) -> None:
    run = uuid.uuid4().hex[:6]
    conversations = [
        await _escalate(stack, f"zpoll-{run}-{n}@example.com", f"z {n}") for n in range(2)
    ]
    tickets: dict[str, int] = {}

    async def ticketed() -> bool:
        for conversation in conversations:
            ticket = await stack.ticket_for(conversation)
            if ticket is None:
                return False
            tickets[conversation] = ticket["id"]
        return True

    await stack.eventually(ticketed, "a ticket per conversation")
    await stack.set_faults("zendesk", FaultProfile(webhooks_off=True))
    try:
        agent = ZendeskAgent(stack.zd_agent)
        for conversation in conversations:
            await agent.reply(tickets[conversation], f"answered-while-off {conversation}")
            await agent.solve(tickets[conversation])

        async def answered_and_closed() -> bool:
            for conversation in conversations:
                found = await stack.conversation(conversation)
                if found.get("state") != "closed" or _answers(stack, found, conversation) < 1:
                    return False
            return True

        await stack.eventually(answered_and_closed, "answers and closes by polling", within=90)
        await stack.settle(6)
        for conversation in conversations:
            found = await stack.conversation(conversation)
            assert _answers(stack, found, conversation) == 1  # once, though polled often
            assert found["state"] == "closed"
        state = await stack.sandbox_state("zendesk")
        assert state["webhooks"]["dropped_by_state"].get("deactivated", 0) >= 4
    finally:
        await stack.set_faults("zendesk", FaultProfile())


def _answers(stack: SyncStack, conversation: dict[str, Any], cid: str) -> int:
    parts = conversation["conversation_parts"]["conversation_parts"]
    return sum(
        1
        for p in parts
        if str((p.get("author") or {}).get("id")) == stack.bot_admin_id
        and f"answered-while-off {cid}" in str(p.get("body"))
    )


async def test_polling_only_mode_syncs_the_same_flows(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    """A workspace that cannot reach our endpoint: no webhook ever arrives (the sandboxes'
    are off, and the worker's webhook URL refuses them), polls carry every flow."""
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path,
        name="polling-only",
        faults=FaultProfile(webhooks_off=True),
        extra_env=polling_env("polling"),
        zendesk_config=ZENDESK_EXPORTS,
    ) as stack:
        async with httpx.AsyncClient(base_url=stack.worker.url) as worker:
            refused = await worker.post("/webhooks/intercom", content=b"{}")
        assert refused.status_code == 404  # polling only: no endpoint to post to

        email = f"only-{uuid.uuid4().hex[:6]}@example.com"
        customer = IntercomCustomer(stack.ic, email=email, name="Polly")
        admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
        conversation = await customer.start_conversation("Where is my parcel?")
        await customer.reply(conversation, "It was due Monday")
        await admin.tag(conversation, "billing-issue")
        await admin.tag(conversation, "escalate")
        ticket = await stack.eventually(
            lambda: stack.ticket_for(conversation), "the escalation's ticket", within=60
        )

        async def thread(count: int) -> bool:
            return len(await stack.comments(ticket["id"])) >= count

        await stack.eventually(lambda: thread(2), "both messages on the ticket")
        await customer.reply(conversation, "Any news?")
        await stack.eventually(lambda: thread(3), "the later reply appended")
        agent = ZendeskAgent(stack.zd_agent)
        await agent.reply(ticket["id"], "Re-shipped today")
        await agent.solve(ticket["id"])

        async def answered_and_closed() -> bool:
            found = await stack.conversation(conversation)
            bot = [
                p
                for p in found["conversation_parts"]["conversation_parts"]
                if str((p.get("author") or {}).get("id")) == stack.bot_admin_id
                and "Re-shipped today" in str(p.get("body"))
            ]
            return found.get("state") == "closed" and len(bot) == 1

        await stack.eventually(answered_and_closed, "the answer and the close in Intercom")
        await stack.settle(5)
        texts = _texts(await stack.comments(ticket["id"]))
        for wanted in ("Where is my parcel?", "It was due Monday", "Any news?", "Re-shipped"):
            assert sum(wanted in t for t in texts) == 1, texts
        assert len(texts) == 4
        final = (await stack.ticket_for(conversation)) or {}
        assert "billing" in final["tags"]  # through the taxonomy
        assert final["status"] == "solved"
        assert await answered_and_closed()
        assert (await stack.sandbox_state("intercom"))["webhooks"]["sent"] == 0
