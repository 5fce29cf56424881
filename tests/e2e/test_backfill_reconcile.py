"""Backfill and reconciliation (issue 14) as an operator runs them: ``deskstream backfill``
and ``deskstream reconcile`` as commands beside a worker (webhooks only, no polling), against
real Kafka and the sandboxes.

- A backfill of a couple of hundred conversations that never reached Deskstream (Intercom's
  webhooks were off when they were escalated) is killed halfway and started again: it resumes
  from its stored position, prints its progress, and every conversation gets exactly one
  ticket; a third run says it is complete, and ``--again`` reads everything once more and still
  creates nothing twice.
- A ticket solved while the worker was down (Zendesk gave up on its webhook) is repaired by
  ``deskstream reconcile``: the conversation closes, and the link's audit says ``reconciled``
  with why.
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.rehearsal import SyncStack, sync_stack
from sandboxes.base.faults import FaultProfile
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

CONVERSATIONS = 240
#: Zendesk: room for a couple of hundred ticket creates, and an export that holds back 1 s
#: instead of a minute (a reconciliation sees a change once the export shows it)
FAST = {
    "rate_limit_per_minute": 12_000,
    "incremental_export_lag_s": 1.0,
    "incremental_export_per_minute": 600,
}


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path_factory.mktemp("backfill"),
        name="backfill",
        zendesk_config=FAST,
        extra_env={"DESKSTREAM_CONNECTORS__zendesk__RATE_LIMIT_PER_MINUTE": "12000"},
    ) as running:
        yield running


async def _tickets_of(stack: SyncStack, links: set[str]) -> dict[str, int]:
    """external id → tickets carrying it, over every page of the ticket list."""
    counts: dict[str, int] = {}
    page: str | None = "/api/v2/tickets?per_page=100"
    while page:
        body = (await stack.zd_agent.get(page)).json()
        for ticket in body["tickets"]:
            if ticket.get("external_id") in links:
                counts[ticket["external_id"]] = counts.get(ticket["external_id"], 0) + 1
        page = body.get("next_page")
    return counts


async def _run(stack: SyncStack, *args: str) -> tuple[int, str]:
    process = await stack.command(*args)
    _, err = await process.communicate()
    return process.returncode or 0, err.decode(errors="replace")


async def test_a_backfill_killed_halfway_resumes_and_creates_each_ticket_once(
    stack: SyncStack,
) -> None:
    run = uuid.uuid4().hex[:6]
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    await stack.set_faults("intercom", FaultProfile(webhooks_off=True))
    conversations: list[str] = []

    async def start(n: int) -> None:
        customer = IntercomCustomer(stack.ic, email=f"bf-{run}-{n}@example.com", name=f"C{n}")
        conversation = await customer.start_conversation(f"backfill {run} order {n}")
        await admin.tag(conversation, f"bf-{run}")
        await admin.tag(conversation, "escalate")
        conversations.append(conversation)

    try:
        for first in range(0, CONVERSATIONS, 20):
            await asyncio.gather(*(start(n) for n in range(first, first + 20)))
    finally:
        await stack.set_faults("intercom", FaultProfile())
    links = {stack.link(c) for c in conversations}
    await stack.settle(3)
    assert await _tickets_of(stack, links) == {}  # they never reached Deskstream
    tag = await admin.tag_id(f"bf-{run}")
    args = ["backfill", "--route", "intercom->zendesk", "--filter", f"tag_ids={tag}"]
    args += ["--page-size", "20", "--max-lag", "5000"]

    # Killed once the progress line shows half of them sent.
    process = await stack.command(*args)
    assert process.stderr is not None
    seen = ""
    while True:
        chunk = await process.stderr.read(200)
        assert chunk, f"the backfill ended before halfway:\n{seen}"
        seen += chunk.decode(errors="replace")
        done = [int(d) for d in re.findall(r"(\d+)/240 \(", seen)]
        if done and done[-1] >= CONVERSATIONS // 2:
            break
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert re.search(r"backfill intercom->zendesk: \d+/240 \(\d+%\) [\d.]+/s ETA \S+", seen)

    status, resumed = await _run(stack, *args)
    assert status == 0, resumed
    after = int(re.search(r"resuming after (\d+) records", resumed).group(1))  # type: ignore[union-attr]
    assert CONVERSATIONS // 2 <= after < CONVERSATIONS
    assert "240/240 (100%)" in resumed

    async def all_ticketed() -> bool:
        return len(await _tickets_of(stack, links)) == CONVERSATIONS

    await stack.eventually(all_ticketed, "a ticket for every backfilled conversation", within=240)
    status, third = await _run(stack, *args)
    assert status == 0
    assert "already complete (240 records)" in third
    status, again = await _run(stack, *args, "--again")
    assert status == 0
    assert "240/240 (100%)" in again
    await stack.settle(8)
    counts = await _tickets_of(stack, links)
    assert len(counts) == CONVERSATIONS
    assert {n for n in counts.values()} == {1}  # exactly once, through a kill and two re-runs
    sample = await stack.ticket_for(conversations[0])
    assert sample is not None
    assert len(await stack.comments(sample["id"])) == 1  # the opening message, once


async def test_a_ticket_solved_while_the_worker_was_down_is_repaired_by_reconcile(
    stack: SyncStack,
) -> None:
    customer = IntercomCustomer(stack.ic, email=f"rc-{uuid.uuid4().hex[:6]}@example.com", name="R")
    conversation = await customer.start_conversation("reconcile me")
    await IntercomAdmin(stack.ic, admin_id=stack.human_admin_id).tag(conversation, "escalate")
    ticket = await stack.eventually(lambda: stack.ticket_for(conversation), "the ticket")
    await stack.settle(3)

    stack.worker.stop()
    await ZendeskAgent(stack.zd_agent).solve(ticket["id"])

    async def given_up() -> bool:
        return int((await stack.sandbox_state("zendesk"))["webhooks"]["pending"]) == 0

    await stack.eventually(given_up, "Zendesk done retrying its webhook", within=60)
    await asyncio.to_thread(stack.worker.start)
    await stack.settle(3)
    found: dict[str, Any] = await stack.conversation(conversation)
    assert found["state"] == "open"  # the solve never reached Deskstream

    status, out = await _run(stack, "reconcile", "--since", "10m", "--connector", "zendesk")
    assert status == 0, out

    async def closed() -> bool:
        return (await stack.conversation(conversation)).get("state") == "closed"

    await stack.eventually(closed, "the conversation closed by the reconciliation")
    assert re.search(r"reconcile zendesk: [1-9]\d* records re-read", out), out
    trail = await stack.audit(stack.link(conversation))
    [reconciled] = [a for a in trail if a.decision == "reconciled"]
    assert reconciled.details["field"] == "status"
    assert reconciled.details["cause"] == "missed_change"
    assert (reconciled.details["believed"], reconciled.details["found"]) == ("open", "solved")
