"""The Intercom ⇄ Zendesk flows, through real Kafka, a worker process and the sandboxes."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from app.rehearsal import SyncStack
from connectors.base.links import case_link_id
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from sandboxes.zendesk.actors import ZendeskAgent, ZendeskRequester
from schemas.errors import DeskstreamError

pytestmark = pytest.mark.kafka

INVOICE = b"%PDF-1.4 invoice INV-2026-03-1181 " + bytes(range(256)) * 8


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


async def _escalated(stack: SyncStack, *, email: str | None = None) -> tuple[str, dict[str, Any]]:
    customer = IntercomCustomer(stack.ic, email=email or _email("maria"), name="Maria Lopez")
    conversation = await customer.start_conversation("I was charged twice for March")
    await IntercomAdmin(stack.ic, admin_id=stack.human_admin_id).tag(conversation, "escalate")
    ticket = await stack.eventually(
        lambda: stack.ticket_for(conversation), "the escalation's ticket"
    )
    return conversation, ticket


def _bot_parts(conversation: dict[str, Any], bot: str) -> list[dict[str, Any]]:
    parts = conversation["conversation_parts"]["conversation_parts"]
    return [p for p in parts if str((p.get("author") or {}).get("id")) == bot and p.get("body")]


async def test_escalation_becomes_one_ticket_with_the_full_thread(stack: SyncStack) -> None:
    email = _email("maria")
    customer = IntercomCustomer(stack.ic, email=email, name="Maria Lopez")
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)
    conversation = await customer.start_conversation("I was charged twice for March")
    await customer.reply(
        conversation,
        "Invoice attached",
        attachment_urls=[stack.file_url(f"{conversation}.pdf", INVOICE)],
    )
    await admin.note(conversation, "Stripe shows two charges")
    await admin.tag(conversation, "billing-issue")
    await admin.tag(conversation, "escalate")

    ticket = await stack.eventually(
        lambda: stack.ticket_for(conversation), "a ticket for the conversation"
    )

    async def full_thread() -> list[dict[str, Any]] | None:
        comments = await stack.comments(ticket["id"])
        return comments if len(comments) >= 3 else None

    comments = await stack.eventually(full_thread, "three comments on the ticket")
    # Webhooks arrive in any order, so a message can reach the ticket after its create;
    # what must hold is that each is there once, with its author, time and visibility.
    by_text = {
        text: [c for c in comments if text in c["body"]]
        for text in (
            "I was charged twice for March",
            "Invoice attached",
            "Stripe shows two charges",
        )
    }
    assert all(len(found) == 1 for found in by_text.values()), by_text
    opening, invoice, note = (by_text[t][0] for t in by_text)
    assert opening["public"]
    assert invoice["public"]
    assert not note["public"]  # admin notes stay internal
    # the customer's words are authored by the requester; the admin's note names its author
    assert opening["author_id"] == ticket["requester_id"]
    assert invoice["author_id"] == ticket["requester_id"]
    assert "(agent)" in note["body"]
    [attachment] = invoice["attachments"]
    downloaded = (await stack.zd_agent.get(attachment["content_url"])).content
    assert hashlib.sha256(downloaded).digest() == hashlib.sha256(INVOICE).digest()  # re-uploaded
    requester = (await stack.zd_agent.get(f"/api/v2/users/{ticket['requester_id']}")).json()["user"]
    assert requester["email"] == email
    assert "billing" in ticket["tags"]  # through the taxonomy
    assert "escalate" not in ticket["tags"]  # steering tags stay in Intercom

    await customer.reply(conversation, "Any news?")
    await stack.eventually(
        lambda: _has(stack.comments(ticket["id"]), "Any news?"), "the later reply appended"
    )
    await stack.settle()
    assert len(await stack.comments(ticket["id"])) == 4  # nothing doubled
    assert len(await stack.zendesk_users(email)) == 1
    assert (await stack.ticket_for(conversation)) is not None  # still exactly one


async def _has(comments: Any, text: str) -> bool:
    return any(text in c["body"] for c in await comments)


async def test_agent_replies_and_statuses_round_trip_without_loops(stack: SyncStack) -> None:
    conversation, ticket = await _escalated(stack)
    agent = ZendeskAgent(stack.zd_agent)
    admin = IntercomAdmin(stack.ic, admin_id=stack.human_admin_id)

    await agent.reply(ticket["id"], "We refunded the second charge.")
    await agent.note(ticket["id"], "refund re_8812 issued in Stripe")

    async def replied() -> list[dict[str, Any]] | None:
        parts = _bot_parts(await stack.conversation(conversation), stack.bot_admin_id)
        return parts or None

    [reply] = await stack.eventually(replied, "the agent's reply in Intercom")
    assert "We refunded the second charge." in reply["body"]
    assert reply["part_type"] == "comment"  # a public admin reply, not a note

    await agent.solve(ticket["id"])
    await stack.eventually(
        lambda: _state(stack, conversation, "closed"),
        "the conversation closed after Zendesk solved",
    )
    await admin.open(conversation)  # the customer came back: Intercom reopens
    await stack.eventually(
        lambda: _status(stack, conversation, "open"),
        "the ticket reopened (intercom_reopens_zendesk)",
    )
    await stack.settle()
    final = await stack.conversation(conversation)
    assert len(_bot_parts(final, stack.bot_admin_id)) == 1  # the note never crossed; no echo
    assert "refund re_8812" not in str(final)
    assert final["state"] == "open"
    assert (await stack.ticket_for(conversation) or {})["status"] == "open"


async def _state(stack: SyncStack, conversation: str, state: str) -> bool:
    return bool((await stack.conversation(conversation))["state"] == state)


async def _status(stack: SyncStack, conversation: str, status: str) -> bool:
    return ((await stack.ticket_for(conversation)) or {}).get("status") == status


async def test_tags_map_both_ways(stack: SyncStack) -> None:
    conversation, ticket = await _escalated(stack)
    await IntercomAdmin(stack.ic, admin_id=stack.human_admin_id).tag(conversation, "billing-issue")
    await stack.eventually(
        lambda: _ticket_has_tag(stack, conversation, "billing"),
        "billing-issue → billing on Zendesk",
    )
    await ZendeskAgent(stack.zd_agent).tag(ticket["id"], add=["refund"])

    async def tagged() -> bool:
        tags = (await stack.conversation(conversation))["tags"]["tags"]
        return any(t["name"] == "refund" for t in tags)

    await stack.eventually(tagged, "refund → Intercom")


async def _ticket_has_tag(stack: SyncStack, conversation: str, tag: str) -> bool:
    return tag in ((await stack.ticket_for(conversation)) or {}).get("tags", [])


async def test_a_customer_writing_from_a_second_address_is_matched(stack: SyncStack) -> None:
    primary, secondary = _email("ana"), _email("ana-work")
    agent = ZendeskAgent(stack.zd_agent)
    user_id = await agent.record_secondary_email(
        name="Ana Silva", email=primary, secondary=secondary
    )
    _, ticket = await _escalated(stack, email=secondary)
    assert ticket["requester_id"] == user_id  # matched, not duplicated
    assert [u["id"] for u in await stack.zendesk_users(primary)] == [user_id]
    assert [u["id"] for u in await stack.zendesk_users(secondary)] == [user_id]


async def test_a_new_zendesk_ticket_from_a_known_customer_is_acknowledged(stack: SyncStack) -> None:
    email = _email("liam")
    await IntercomCustomer(stack.ic, email=email, name="Liam Chen").identify()
    ticket_id = await ZendeskRequester(stack.zd_agent, name="Liam Chen", email=email).open_ticket(
        subject="Cannot log in", body="Password reset mail never arrives"
    )

    async def acknowledged() -> list[dict[str, Any]] | None:
        search = {"query": {"field": "source.body", "operator": "~", "value": f"#{ticket_id}"}}
        response = await stack.ic.post("/conversations/search", json=search)
        return response.json().get("conversations") or None

    link = case_link_id("zendesk", "zendesk", str(ticket_id))
    try:
        [conversation] = await stack.eventually(acknowledged, "the acknowledgement in Intercom")
    except DeskstreamError as exc:
        raise AssertionError(
            f"{exc}\naudit trail of the ticket:\n{await stack.trail(link)}"
        ) from None
    assert str(ticket_id) in conversation["source"]["body"]
