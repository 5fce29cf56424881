"""The Intercom normaliser on the notifications the sandbox really sends: one row per topic,
the canonical values it derives, deterministic event ids, and malformed deliveries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.base.links import case_link_id, contact_link_id
from connectors.base.normalize import event_id
from connectors.base.settings import ConnectorSettings
from connectors.intercom.normalize import IntercomNormaliser
from sandboxes.base import LoopbackReceiver, ManualClock, run_sandboxes
from sandboxes.intercom import AdminSeed
from schemas.errors import SkippableRecordError
from schemas.models import (
    ActorKind,
    Attachment,
    Case,
    CaseStatus,
    Contact,
    EntityType,
    Envelope,
    Message,
    Op,
    Priority,
    RawDelivery,
)
from tests.sandboxes.intercom.conftest import TOKEN, make_sandbox

BOT = "991267009"
AGENT = "991267002"
RECEIVED = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
ADMINS = (
    AdminSeed(id="991267001", name="Sandbox Owner", email="owner@sandbox.example"),
    AdminSeed(id=AGENT, name="Ada Agent", email="ada@sandbox.example"),
    AdminSeed(id=BOT, name="Deskstream", email="bot@sandbox.example"),
)
SETTINGS = ConnectorSettings(platform="intercom", service_account_id=BOT)

Recorded = dict[str, bytes]


async def _record_every_topic() -> tuple[Recorded, dict[str, str]]:
    """Drive a sandbox through every topic the connector reads; keep each topic's first body."""
    clock = ManualClock()
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(
            clock=clock,
            webhook_url=receiver.url,
            admins=ADMINS,
            send_ping_on_start=True,
            custom_attributes={
                "contact": {"plan": "string"},
                "conversation": {"region": "string"},
                "company": {},
            },
        )
        async with run_sandboxes([sandbox]) as running:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as c:
                ids = await _scenario(c, clock)
            assert sandbox.context.webhooks is not None
            await sandbox.context.webhooks.drain()
    recorded: Recorded = {}
    for delivery in receiver.deliveries:
        recorded.setdefault(json.loads(delivery.body)["topic"], delivery.body)
    return recorded, ids


async def _scenario(c: httpx.AsyncClient, clock: ManualClock) -> dict[str, str]:
    async def ok(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        clock.advance(1)
        response = await c.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    maria = await ok(
        "POST",
        "/contacts",
        {
            "email": "Maria@Example.com",
            "external_id": "crm-7",
            "name": "Maria",
            "phone": "+34 600 000 000",
            "custom_attributes": {"plan": "pro"},
        },
    )
    await ok("POST", "/contacts", {"email": "lead@example.com", "role": "lead"})
    await ok("PUT", f"/contacts/{maria['id']}", {"name": "Maria Lopez"})
    tag = await ok("POST", "/tags", {"name": "vip"})
    await ok("POST", f"/contacts/{maria['id']}/tags", {"id": tag["id"]})
    await ok("DELETE", f"/contacts/{maria['id']}/tags/{tag['id']}")
    started = await ok(
        "POST",
        "/conversations",
        {"from": {"type": "user", "id": maria["id"]}, "body": "Printer on fire"},
    )
    cid = started["conversation_id"]
    part = f"/conversations/{cid}/parts"
    reply = f"/conversations/{cid}/reply"
    await ok(
        "POST",
        reply,
        {
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": maria["id"],
            "body": "Photo attached",
            "attachment_urls": ["https://files.example.com/fire.png"],
        },
    )
    await ok(
        "POST",
        reply,
        {"message_type": "comment", "type": "admin", "admin_id": AGENT, "body": "On it"},
    )
    await ok(
        "POST", reply, {"message_type": "note", "type": "admin", "admin_id": AGENT, "body": "VIP!"}
    )
    await ok(
        "POST",
        part,
        {"message_type": "assignment", "type": "admin", "admin_id": AGENT, "assignee_id": AGENT},
    )
    await ok(
        "POST", part, {"message_type": "snoozed", "admin_id": AGENT, "snoozed_until": 2000000000}
    )
    await ok("POST", part, {"message_type": "open", "admin_id": AGENT})  # an unsnooze
    await ok(
        "PUT",
        f"/_sandbox/inbox/conversations/{cid}/priority",
        {"admin_id": AGENT, "priority": "priority"},
    )
    await ok("PUT", f"/conversations/{cid}", {"custom_attributes": {"region": "EMEA"}})
    await ok("POST", f"/conversations/{cid}/tags", {"id": tag["id"], "admin_id": BOT})
    await ok(
        "POST",
        part,
        {"message_type": "close", "type": "admin", "admin_id": AGENT, "body": "Fixed, closing"},
    )
    await ok("POST", part, {"message_type": "open", "admin_id": AGENT})  # reopens a closed one
    sent = await ok(
        "POST",
        "/messages",
        {
            "message_type": "in_app",
            "body": "We received your ticket",
            "from": {"type": "admin", "id": int(BOT)},
            "to": {"type": "user", "id": maria["id"]},
            "create_conversation_without_contact_reply": True,
        },
    )
    await ok("DELETE", f"/conversations/{sent['conversation_id']}")
    lead = await ok(
        "POST", "/contacts/search", {"query": {"field": "role", "operator": "=", "value": "lead"}}
    )
    await ok("DELETE", f"/contacts/{lead['data'][0]['id']}")
    return {"contact": maria["id"], "conversation": cid, "outbound": sent["conversation_id"]}


@pytest.fixture(scope="module")
async def sandbox_notifications() -> tuple[Recorded, dict[str, str]]:
    return await _record_every_topic()


def _delivery(body: bytes, delivery_id: str = "intercom:notif") -> RawDelivery:
    return RawDelivery(
        delivery_id=delivery_id,
        connector_id="ic",
        platform="intercom",
        received_at=RECEIVED,
        body=body,
        signature_verified=True,
    )


def _normalise(body: bytes) -> list[Envelope]:
    return IntercomNormaliser(connector_id="ic", settings=SETTINGS).normalise(_delivery(body))


# (entity type, op, changed fields, actor kind) per emitted event, in order
Shape = tuple[EntityType, Op, list[str], ActorKind]
CASE, MESSAGE, CONTACT = EntityType.CASE, EntityType.MESSAGE, EntityType.CONTACT
C, U, D = Op.CREATE, Op.UPDATE, Op.DELETE
CUSTOMER, AGENT_, BOT_, SYSTEM = (
    ActorKind.CUSTOMER,
    ActorKind.AGENT,
    ActorKind.INTEGRATION,
    ActorKind.SYSTEM,
)
_CONTACT_FIELDS = ["emails", "external_id", "name", "phone", "plan", "custom_attributes.plan"]

#: every conversation notification repeats the conversation's first message (its source):
#: webhooks arrive in any order, so each one must be able to start the thread
SOURCE: Shape = (MESSAGE, C, [], CUSTOMER)

TOPICS: list[Any] = [
    pytest.param("ping", [], id="ping"),
    pytest.param(
        "contact.user.created", [(CONTACT, C, _CONTACT_FIELDS, SYSTEM)], id="contact-user-created"
    ),
    pytest.param(
        "contact.lead.created", [(CONTACT, C, ["emails"], SYSTEM)], id="contact-lead-created"
    ),
    pytest.param(
        "contact.user.updated", [(CONTACT, U, _CONTACT_FIELDS, SYSTEM)], id="contact-updated"
    ),
    pytest.param("contact.user.tag.created", [(CONTACT, U, ["tags"], SYSTEM)], id="contact-tagged"),
    pytest.param(
        "contact.user.tag.deleted", [(CONTACT, U, ["tags"], SYSTEM)], id="contact-untagged"
    ),
    pytest.param("contact.deleted", [(CONTACT, D, [], SYSTEM)], id="contact-deleted"),
    pytest.param(
        "conversation.user.created",
        [(CASE, C, [], CUSTOMER), (MESSAGE, C, [], CUSTOMER)],
        id="user-created",
    ),
    pytest.param(
        "conversation.user.replied",
        # the conversation is open after the reply: a reply reopens, so it names the status
        [(CASE, U, ["status"], CUSTOMER), SOURCE, (MESSAGE, C, [], CUSTOMER)],
        id="user-replied",
    ),
    pytest.param(
        "conversation.admin.replied",
        [(CASE, U, [], AGENT_), SOURCE, (MESSAGE, C, [], AGENT_)],
        id="admin-replied",
    ),
    pytest.param(
        "conversation.admin.noted",
        [(CASE, U, [], AGENT_), SOURCE, (MESSAGE, C, [], AGENT_)],
        id="admin-noted",
    ),
    pytest.param(
        "conversation.admin.assigned", [(CASE, U, ["assignee"], AGENT_), SOURCE], id="assigned"
    ),
    pytest.param(
        "conversation.admin.snoozed", [(CASE, U, ["status"], AGENT_), SOURCE], id="snoozed"
    ),
    pytest.param(
        "conversation.admin.unsnoozed", [(CASE, U, ["status"], AGENT_), SOURCE], id="unsnoozed"
    ),
    pytest.param("conversation.admin.opened", [(CASE, U, ["status"], AGENT_), SOURCE], id="opened"),
    # The notification carries no part, so nothing names who changed the priority.
    pytest.param(
        "conversation.priority.updated",
        [(CASE, U, ["priority"], SYSTEM), SOURCE],
        id="priority-updated",
    ),
    pytest.param(
        "conversation.admin.closed",
        [(CASE, U, ["status"], AGENT_), SOURCE, (MESSAGE, C, [], AGENT_)],
        id="closed-with-a-comment",
    ),
    pytest.param(
        "conversation_part.tag.created",
        [(CASE, U, ["tags", "tags.vip"], BOT_), SOURCE],
        id="tagged-by-bot",
    ),
    pytest.param(
        "conversation.admin.single.created",
        [(CASE, C, [], BOT_), (MESSAGE, C, [], BOT_)],
        id="admin-single-created",
    ),
    pytest.param("conversation.deleted", [(CASE, D, [], SYSTEM)], id="conversation-deleted"),
]


@pytest.mark.parametrize(("topic", "shapes"), TOPICS)
def test_every_topic(
    sandbox_notifications: tuple[Recorded, dict[str, str]], topic: str, shapes: list[Shape]
) -> None:
    recorded, _ = sandbox_notifications
    events = _normalise(recorded[topic])
    got = [(e.source.entity_type, e.op, e.changed_fields, e.source.actor.kind) for e in events]
    assert got == shapes
    notification = json.loads(recorded[topic])
    for event in events:
        assert event.source.event_type == topic
        assert event.source.occurred_at == datetime.fromtimestamp(notification["created_at"], UTC)
        # The change's own identity (a part, the first message) where it has one, so a poll
        # of the same change gets the same id; the notification's otherwise.
        key = event.source.source_event_id or ""
        assert key.startswith((notification["id"] + ":", "part:", "source:")), key
        assert (event.data is None) == (event.op is Op.DELETE)
    assert len({e.event_id for e in events}) == len(events)


def _new_part(events: list[Envelope]) -> Message:
    """The part a notification is about: the last message (the first repeats the source)."""
    messages = [e.data for e in events if isinstance(e.data, Message)]
    return messages[-1]


def _one(events: list[Envelope], kind: type[Any]) -> Any:
    (data,) = [e.data for e in events if isinstance(e.data, kind)]
    return data


def test_a_new_conversation_is_a_case_and_its_first_message(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
) -> None:
    recorded, ids = sandbox_notifications
    events = _normalise(recorded["conversation.user.created"])
    case, message = events[0], events[1]
    assert case.source.entity_id == ids["conversation"]
    assert case.link_id == case_link_id("intercom", "ic", ids["conversation"])
    assert isinstance(case.data, Case)
    assert case.data.status is CaseStatus.OPEN
    assert case.data.priority is Priority.NORMAL
    assert case.data.channel == "chat"
    assert case.data.requester is not None
    assert (case.data.requester.id, case.data.requester.email) == (
        ids["contact"],
        "Maria@Example.com",
    )
    assert isinstance(message.data, Message)
    assert message.data.case_id == ids["conversation"]
    assert (message.data.body_text, message.data.body_html) == (
        "Printer on fire",
        "<p>Printer on fire</p>",
    )
    assert message.data.public
    assert message.link_id == case.link_id
    source = json.loads(recorded["conversation.user.created"])["data"]["item"]["source"]
    assert message.source.entity_id == source["id"]


def test_parts_become_messages_with_visibility_and_attachments(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
) -> None:
    recorded, _ = sandbox_notifications
    reply = _new_part(_normalise(recorded["conversation.user.replied"]))
    assert reply.attachments == [
        Attachment(
            name="fire.png",
            content_type="image/png",
            size_bytes=0,
            source_url="https://files.example.com/fire.png",
        )
    ]
    note = _new_part(_normalise(recorded["conversation.admin.noted"]))
    assert (note.public, note.body_text, note.author.id) == (False, "VIP!", AGENT)
    closing = _new_part(_normalise(recorded["conversation.admin.closed"]))
    assert (closing.public, closing.body_text) == (True, "Fixed, closing")
    part = json.loads(recorded["conversation.admin.noted"])["data"]["item"]["conversation_parts"]
    events = _normalise(recorded["conversation.admin.noted"])
    assert events[-1].source.entity_id == part["conversation_parts"][0]["id"]


@pytest.mark.parametrize(
    ("topic", "check"),
    [
        pytest.param(
            "conversation.admin.snoozed",
            lambda c: c.status is CaseStatus.PENDING,
            id="snoozed-is-pending",
        ),
        pytest.param(
            "conversation.admin.opened", lambda c: c.status is CaseStatus.OPEN, id="opened-is-open"
        ),
        pytest.param(
            "conversation.admin.unsnoozed",
            lambda c: c.status is CaseStatus.OPEN,
            id="unsnoozed-is-open",
        ),
        pytest.param(
            "conversation.priority.updated",
            lambda c: c.priority is Priority.HIGH,
            id="priority-is-high",
        ),
        pytest.param(
            "conversation.admin.closed",
            lambda c: c.status is CaseStatus.CLOSED and c.custom_fields == {"region": "EMEA"},
            id="closed-is-closed-custom-fields",
        ),
        pytest.param(
            "conversation.admin.assigned",
            lambda c: (
                c.assignee is not None
                and (c.assignee.kind, c.assignee.id) == (ActorKind.AGENT, AGENT)
            ),
            id="assignee",
        ),
        pytest.param(
            "conversation_part.tag.created", lambda c: c.tags == ["vip"], id="tags-by-name"
        ),
        pytest.param(
            "conversation.admin.single.created",
            lambda c: c.requester is not None and c.requester.kind is ActorKind.CUSTOMER,
            id="outbound-requester-is-the-recipient",
        ),
    ],
)
def test_case_values(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
    topic: str,
    check: Callable[[Case], bool],
) -> None:
    recorded, _ = sandbox_notifications
    assert check(_one(_normalise(recorded[topic]), Case))


def test_contact_values(sandbox_notifications: tuple[Recorded, dict[str, str]]) -> None:
    recorded, ids = sandbox_notifications
    (event,) = _normalise(recorded["contact.user.updated"])
    assert event.data == Contact(
        emails=["Maria@Example.com"],  # as Intercom has it; identity matching normalises
        external_id="crm-7",
        name="Maria Lopez",
        phone="+34 600 000 000",
        plan="pro",
        custom_attributes={"plan": "pro"},
    )
    assert event.source.entity_id == ids["contact"]
    assert event.link_id == contact_link_id(
        "maria@example.com", platform="intercom", connector_id="ic", entity_id=ids["contact"]
    )


def test_plan_attribute_is_configurable(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
) -> None:
    recorded, _ = sandbox_notifications
    normaliser = IntercomNormaliser(connector_id="ic", settings=SETTINGS, plan_attribute="tier")
    (event,) = normaliser.normalise(_delivery(recorded["contact.user.created"]))
    assert isinstance(event.data, Contact)
    assert event.data.plan is None
    assert event.data.custom_attributes == {"plan": "pro"}


def test_without_a_service_account_the_bot_is_just_an_agent(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
) -> None:
    recorded, _ = sandbox_notifications
    settings = ConnectorSettings(platform="intercom")
    events = IntercomNormaliser(connector_id="ic", settings=settings).normalise(
        _delivery(recorded["conversation.admin.single.created"])
    )
    assert {e.source.actor.kind for e in events} == {ActorKind.AGENT}


def test_event_ids_are_deterministic_across_redeliveries(
    sandbox_notifications: tuple[Recorded, dict[str, str]],
) -> None:
    recorded, _ = sandbox_notifications
    body = recorded["conversation.user.created"]
    retry = json.dumps({**json.loads(body), "delivery_attempts": 2}).encode()
    first, again = _normalise(body), _normalise(retry)
    assert [e.event_id for e in first] == [e.event_id for e in again]
    source_id = json.loads(body)["data"]["item"]["source"]["id"]
    assert first[0].event_id == event_id("ic", first[0].source.source_event_id or "")
    assert first[0].source.source_event_id == f"source:{source_id}:conversation.user.created"
    assert first[1].source.source_event_id == f"source:{source_id}"


def _mutated(change: Callable[[dict[str, Any]], Any]) -> bytes:
    notification: dict[str, Any] = {
        "type": "notification_event",
        "id": "notif_1",
        "topic": "conversation.admin.closed",
        "created_at": 1735689600,
        "data": {
            "type": "notification_event_data",
            "item": {"type": "conversation", "id": "42", "state": "closed"},
        },
    }
    change(notification)
    return json.dumps(notification).encode()


MALFORMED: list[Any] = [
    pytest.param(b"\x00garbage", "not JSON", id="not-json"),
    pytest.param(b"[1, 2]", "notification envelope", id="array"),
    pytest.param(
        _mutated(lambda n: n.update(type="event_callback")), "'notification_event'", id="wrong-type"
    ),
    pytest.param(_mutated(lambda n: n.pop("topic")), "topic: Field required", id="no-topic"),
    pytest.param(_mutated(lambda n: n.pop("data")), "data: Field required", id="no-data"),
    pytest.param(
        _mutated(lambda n: n.update(created_at="yesterday")), "created_at", id="bad-created-at"
    ),
    pytest.param(
        _mutated(lambda n: n["data"]["item"].pop("id")), "id: Field required", id="item-without-id"
    ),
    pytest.param(
        _mutated(lambda n: n["data"]["item"].update(conversation_parts="many")),
        "conversation_parts",
        id="parts-not-a-list",
    ),
    pytest.param(
        _mutated(lambda n: n.update(topic="visitor.signed_up")),
        "not one Deskstream syncs",
        id="unknown-topic",
    ),
    pytest.param(
        _mutated(lambda n: n.update(topic="conversation.deleted", data={"item": {"type": "x"}})),
        "id: Field required",
        id="delete-without-id",
    ),
]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED)
def test_malformed_deliveries_are_skipped_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(SkippableRecordError, match=fragment):
        _normalise(body)


def test_a_minimal_valid_notification_normalises() -> None:
    (event,) = _normalise(_mutated(lambda n: None))
    assert isinstance(event.data, Case)
    assert event.data.status is CaseStatus.CLOSED
