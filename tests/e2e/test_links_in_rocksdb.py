"""The sync stage's link states in RocksDB (``DESKSTREAM_TABLE_STORE=rocksdb://``, what a
production worker uses): one database per partition, found from the input being decided.

The sync agent decides its inputs in batches and writes the table without Faust's per-event
path, so each read and write must reach the database of that input's partition. Several
conversations escalated at once land in one batch across partitions; the worker is then
killed (-9) and started on the same disk, and every customer writes again. Each conversation
must still have exactly one ticket, holding both messages: a state read from or written to
another partition's database would make a second ticket, or lose the first one's link.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.rehearsal import SyncStack, sync_stack
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer

pytestmark = pytest.mark.kafka

CONVERSATIONS = 8


async def _escalate(stack: SyncStack, email: str) -> tuple[IntercomCustomer, str]:
    customer = IntercomCustomer(stack.ic, email=email, name="Ines Moreau")
    conversation = await customer.start_conversation(f"first message from {email}")
    await IntercomAdmin(stack.ic, admin_id=stack.human_admin_id).tag(conversation, "escalate")
    return customer, conversation


async def _ticket_with(stack: SyncStack, conversation: str, text: str) -> dict[str, Any]:
    async def holding() -> dict[str, Any] | None:
        ticket = await stack.ticket_for(conversation)  # asserts one ticket at most
        if ticket is None:
            return None
        comments = await stack.comments(int(ticket["id"]))
        return ticket if any(text in c["body"] for c in comments) else None

    return await stack.eventually(holding, f"a ticket of {conversation} with {text!r}")


def _databases(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("links-*.db") if p.is_dir()}


async def test_link_states_in_rocksdb_survive_batches_and_a_killed_worker(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    emails = [f"rocks-{run}-{n}@example.com" for n in range(CONVERSATIONS)]
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path,
        name="rocks-links",
        extra_env={"DESKSTREAM_TABLE_STORE": "rocksdb://"},
    ) as stack:
        started = await asyncio.gather(*(_escalate(stack, email) for email in emails))
        first = [
            await _ticket_with(stack, conversation, f"first message from {email}")
            for (_, conversation), email in zip(started, emails, strict=True)
        ]
        databases = await asyncio.to_thread(_databases, tmp_path)
        assert len(databases) > 1, f"link states not in RocksDB by partition: {databases}"

        worker = stack.worker
        await asyncio.to_thread(worker.kill)
        await asyncio.to_thread(worker.start)
        await asyncio.gather(
            *(
                customer.reply(conversation, f"second message from {email}")
                for (customer, conversation), email in zip(started, emails, strict=True)
            )
        )
        for (_, conversation), email, ticket in zip(started, emails, first, strict=True):
            again = await _ticket_with(stack, conversation, f"second message from {email}")
            assert again["id"] == ticket["id"], f"{conversation} got a second ticket"
        await stack.settle()
        tickets = [await stack.ticket_for(conversation) for _, conversation in started]
        assert [t["id"] for t in tickets if t] == [t["id"] for t in first]
