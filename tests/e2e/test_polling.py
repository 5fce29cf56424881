"""Polling beside webhooks (issue 14), through Kafka, a worker process and the sandboxes.

The worker runs Intercom in mode ``both``: webhooks, and the conversation and contact polls
every second. Mid-run Intercom's webhooks are switched off (the sandbox's ``webhooks_off``
fault: a deactivated webhook drops what falls due); what customers and admins do afterwards
must reach Zendesk through polling alone, each change once, and the changes both readers saw
before the switch must not be doubled either: a polled change has its webhook's event id
(``connectors.intercom.canonical``), so the canonical topic holds one event id per message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.rehearsal import SyncStack, sync_stack
from sandboxes.base.faults import FaultProfile
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from schemas.models import EntityType, Envelope
from tests.cluster.leases import canonical_events

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

POLL = {
    "DESKSTREAM_CONNECTORS__intercom__MODE": "both",
    **{
        f"DESKSTREAM_CONNECTORS__intercom__SOURCES__{kind}__{name}": value
        for kind in ("conversations", "contacts")
        for name, value in (
            ("POLL_SECONDS", "1"),
            ("OVERLAP_SECONDS", "5"),
            ("START_LOOKBACK_SECONDS", "60"),
        )
    },
}


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    folder = tmp_path_factory.mktemp("polling")
    async with sync_stack(
        kafka_bootstrap_servers, folder, name="polling", extra_env=POLL
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

    events = await canonical_events(
        stack.settings.kafka_bootstrap_servers, stack.settings.topic("events"), ours_only
    )
    ids: dict[str, set[str]] = defaultdict(set)
    for event in events:
        ids[event.source.entity_id].add(event.event_id)
    assert len(ids) == len(before) * 4 + 1
    assert {k: v for k, v in ids.items() if len(v) != 1} == {}
    await stack.set_faults("intercom", FaultProfile())
    await asyncio.sleep(0)
