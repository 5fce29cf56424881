"""The demo's second act: the Intercom ⇄ Zendesk sync, live, against the sandboxes.

People act through the platforms' public APIs (a customer and an admin in Intercom, an agent
in Zendesk); the worker keeps the two in agreement. A live feed follows the audit topic and
prints every decision the sync makes as it makes it: escalations, mirrored replies, status
round trips, echoes suppressed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaConsumer

from app.rehearsal import SyncStack, sync_stack
from connectors.base.links import case_link_id
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent, ZendeskRequester
from schemas.codec import decode
from schemas.models import AuditRecord

__all__ = ["run_sync_act"]

_COLOURS = {
    "sync": "green",
    "sink": "cyan",
    "echo": "magenta",
    "dedupe": "magenta",
    "rules": "yellow",
}
_QUIET = {"kept", "unchanged", "no_action", "not_escalated", "already_mirrored", "converged"}


async def _feed(stack: SyncStack, stop: asyncio.Event) -> None:
    """Print the sync's decisions as they are made (the audit topic, from now on)."""
    consumer = AIOKafkaConsumer(
        stack.settings.topic("audit"),
        bootstrap_servers=stack.settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    entry = decode(record.value)
                    if isinstance(entry, AuditRecord) and entry.decision not in _QUIET:
                        colour = _COLOURS.get(entry.stage, "white")
                        click.secho(
                            f"      [{entry.stage:6}] {entry.decision:28} {entry.reason[:90]}",
                            fg=colour,
                        )
    finally:
        await consumer.stop()


def _say(actor: str, text: str) -> None:
    click.secho(f"  {actor}: {text}", bold=True)


async def _wait(stack: SyncStack, probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    found = await stack.eventually(probe, what, within=60)
    click.secho(f"  ✓ {what}", fg="green")
    return found


async def _story(stack: SyncStack) -> str:
    email = f"maria.lopez.{uuid.uuid4().hex[:4]}@example.com"
    customer = IntercomCustomer(stack.ic, email=email, name="Maria Lopez")
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    agent = ZendeskAgent(stack.zd_agent)

    _say("Maria, in the Intercom messenger", "I was charged twice for March.")
    conversation = await customer.start_conversation("I was charged twice for March.")
    invoice = stack.file_url(f"invoice-{conversation}.pdf", b"%PDF-1.4 INV-2026-03-1181")
    await customer.reply(conversation, "Here is the invoice.", attachment_urls=[invoice])
    _say("Ada, Intercom admin", "adds an internal note and tags the conversation `escalate`")
    await admin.note(conversation, "Stripe shows two charges of 249 EUR")
    await admin.tag(conversation, "escalate")
    ticket = await _wait(stack, lambda: stack.ticket_for(conversation), "Zendesk ticket created")

    async def threaded() -> bool:
        return len(await stack.comments(ticket["id"])) >= 3

    await _wait(
        stack,
        threaded,
        "full thread on the ticket (customer messages public, note internal, invoice re-uploaded)",
    )

    _say("Sam, Zendesk agent", "replies publicly, adds an internal note, solves the ticket")
    await agent.reply(ticket["id"], "We refunded the second charge; it shows in 3-5 days.")
    await agent.note(ticket["id"], "refund re_8812 issued")
    await agent.solve(ticket["id"])

    async def closed() -> bool:
        return bool((await stack.conversation(conversation))["state"] == "closed")

    await _wait(
        stack,
        closed,
        "reply in Intercom as an admin reply, note kept internal, conversation closed",
    )

    _say("Maria", "writes back; Ada reopens the conversation")
    await customer.reply(conversation, "Thanks! Will I get a receipt?")
    await admin.open(conversation)

    async def reopened() -> bool:
        return ((await stack.ticket_for(conversation)) or {}).get("status") == "open"

    await _wait(stack, reopened, "Zendesk ticket reopened (rule: intercom_reopens_zendesk)")

    _say("Maria, by email to Zendesk", "opens a second ticket")
    await ZendeskRequester(stack.zd_agent, name="Maria Lopez", email=email).open_ticket(
        subject="Receipt for the refund", body="Could you send the refund receipt?"
    )
    await asyncio.sleep(3)
    return conversation


async def run_sync_act(bootstrap: str, folder: Path) -> str:
    """Run the story; returns the reference to trace (``intercom:conversation:<id>``)."""
    async with sync_stack(bootstrap, folder, name="demo") as stack:
        click.echo(f"  sandboxes and a syncing worker up; worker log: {stack.worker.log}")
        stop = asyncio.Event()
        feed = asyncio.create_task(_feed(stack, stop))
        await asyncio.sleep(1)  # the feed is listening before anything happens
        try:
            conversation = await _story(stack)
            await asyncio.sleep(2)
        finally:
            stop.set()
            await feed
        link = case_link_id("intercom", "intercom", conversation)
        click.secho(f"\n== The conversation's story (audit trail of {link})", bold=True)
        click.echo(await stack.trail(link))
        return f"intercom:conversation:{conversation}"
