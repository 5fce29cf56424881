"""The Intercom actors against the real sandbox on loopback: what a customer and a human
admin do shows up in the workspace, and in the webhooks, as theirs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sandboxes.intercom.actors import (
    IntercomAdmin,
    IntercomCustomer,
    find_human_admins,
    intercom_http,
)
from schemas.errors import FatalAPIError
from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv

BOT_ADMIN = "991267001"  # the token's own admin: the integration's identity
HUMAN_ADMIN = "991267002"


def _parts(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    parts = conversation["conversation_parts"]["conversation_parts"]
    assert isinstance(parts, list)
    return parts


async def _conversation(env: IntercomEnv, conversation_id: str) -> dict[str, Any]:
    response = await env.http.get(f"/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def _notifications(env: IntercomEnv) -> list[dict[str, Any]]:
    await env.drain()
    return [json.loads(d.body) for d in env.receiver.deliveries]


async def test_human_admins_leave_out_the_tokens_own_admin(intercom: IntercomEnv) -> None:
    async with intercom_http(intercom.url, TOKEN) as http:
        admins = await find_human_admins(http)
    assert [a.admin_id for a in admins] == [HUMAN_ADMIN, "991267003"]
    assert BOT_ADMIN not in {a.admin_id for a in admins}
    assert admins[0].name == "Ada Agent"


async def test_the_customers_conversation_has_the_right_parts(intercom: IntercomEnv) -> None:
    customer = IntercomCustomer(intercom.http, email="Ann.Lee@northwind.example", name="Ann Lee")
    conversation_id = await customer.start_conversation("The CSV export fails.")
    part_id = await customer.reply(
        conversation_id,
        "Here is a screenshot.",
        attachment_urls=["https://files.example.com/shot.png"],
    )
    conversation = await _conversation(intercom, conversation_id)
    assert conversation["source"]["body"] == "<p>The CSV export fails.</p>"
    assert conversation["source"]["author"]["type"] == "user"
    assert conversation["source"]["author"]["id"] == customer.contact_id
    [part] = _parts(conversation)
    assert part["id"] == part_id
    assert part["part_type"] == "comment"
    author = part["author"]
    assert (author["type"], author["id"]) == ("user", customer.contact_id)
    assert (author["name"], author["email"]) == ("Ann Lee", "Ann.Lee@northwind.example")
    assert part["attachments"][0]["url"] == "https://files.example.com/shot.png"
    assert part["attachments"][0]["name"] == "shot.png"
    topics = [n["topic"] for n in await _notifications(intercom)]
    assert topics == [
        "contact.user.created",
        "conversation.user.created",
        "conversation.user.replied",
    ]


async def test_a_returning_customer_is_the_same_contact(intercom: IntercomEnv) -> None:
    first = IntercomCustomer(intercom.http, email="bo@globex.example", name="Bo Chen")
    again = IntercomCustomer(intercom.http, email="BO@globex.example", name="Bo Chen")
    twin = IntercomCustomer(intercom.http, email="bo@globex.example", name="Bo Chen")
    ids = await asyncio.gather(first.identify(), again.identify(), twin.identify())
    assert len(set(ids)) == 1
    listed = (await intercom.http.get("/contacts")).json()
    assert listed["total_count"] == 1


async def test_the_admins_work_is_authored_by_the_human_admin(intercom: IntercomEnv) -> None:
    customer = IntercomCustomer(intercom.http, email="cy@initech.example", name="Cy Moreau")
    conversation_id = await customer.start_conversation("I was charged twice.")
    admin = IntercomAdmin(intercom.http, admin_id=HUMAN_ADMIN, name="Ada Agent")
    await admin.reply(conversation_id, "Looking into it.")
    await admin.note(conversation_id, "Duplicate charge confirmed.")
    await admin.assign(conversation_id, "991267003")
    await admin.close(conversation_id)
    conversation = await _conversation(intercom, conversation_id)
    parts = _parts(conversation)
    assert [p["part_type"] for p in parts] == ["comment", "note", "assignment", "close"]
    assert {p["author"]["id"] for p in parts} == {HUMAN_ADMIN}
    assert conversation["state"] == "closed"
    assert conversation["admin_assignee_id"] == 991267003
    notifications = await _notifications(intercom)
    replied = [n for n in notifications if n["topic"] == "conversation.admin.replied"]
    [item_part] = _parts(replied[0]["data"]["item"])
    assert item_part["author"]["id"] == HUMAN_ADMIN
    assert item_part["author"]["type"] == "admin"


async def test_tags_by_name_are_created_once_and_removed(intercom: IntercomEnv) -> None:
    customer = IntercomCustomer(intercom.http, email="di@acme.example", name="Di Novak")
    first = await customer.start_conversation("Export broken")
    second = await customer.start_conversation("Also, login broken")
    ada = IntercomAdmin(intercom.http, admin_id=HUMAN_ADMIN)
    ben = IntercomAdmin(intercom.http, admin_id="991267003")
    tag_id = await ada.tag(first, "escalate")
    assert await ben.tag(second, "escalate") == tag_id  # found by name, not created twice
    tags = (await intercom.http.get("/tags")).json()["data"]
    assert [t["name"] for t in tags] == ["escalate"]
    await ada.untag(first, "escalate")
    assert (await _conversation(intercom, first))["tags"]["tags"] == []
    [applied] = (await _conversation(intercom, second))["tags"]["tags"]
    assert applied["name"] == "escalate"
    tagged = [
        n for n in await _notifications(intercom) if n["topic"] == "conversation_part.tag.created"
    ]
    assert len(tagged) == 2


async def test_snooze_and_reopen(intercom: IntercomEnv) -> None:
    customer = IntercomCustomer(intercom.http, email="el@hooli.example", name="El Sato")
    conversation_id = await customer.start_conversation("Question")
    admin = IntercomAdmin(intercom.http, admin_id=HUMAN_ADMIN)
    now = int(intercom.clock.now().timestamp())
    await admin.snooze(conversation_id, now + 3600)
    assert (await _conversation(intercom, conversation_id))["state"] == "snoozed"
    await admin.close(conversation_id, "Closing for now.")
    await admin.open(conversation_id)
    assert (await _conversation(intercom, conversation_id))["state"] == "open"


async def test_plan_is_written_creating_the_attribute_first(intercom: IntercomEnv) -> None:
    customer = IntercomCustomer(intercom.http, email="fa@stark.example", name="Fa Haddad")
    contact_id = await customer.identify()
    admin = IntercomAdmin(intercom.http, admin_id=HUMAN_ADMIN)
    await admin.set_contact_attributes(contact_id, {"plan": "enterprise", "seats": 40})
    await admin.set_contact_attributes(contact_id, {"plan": "premium"})
    contact = (await intercom.http.get(f"/contacts/{contact_id}")).json()
    assert contact["custom_attributes"] == {"plan": "premium", "seats": 40}
    attributes = (await intercom.http.get("/data_attributes?model=contact")).json()["data"]
    custom = {a["name"]: a["data_type"] for a in attributes if a["custom"]}
    assert custom == {"plan": "string", "seats": "integer"}
    # A second teammate, with no cache, finds the attribute instead of failing on it.
    other = IntercomAdmin(intercom.http, admin_id="991267003")
    await other.set_contact_attributes(contact_id, {"plan": "pro"})


async def test_refusals_are_fatal_api_errors_without_the_token(intercom: IntercomEnv) -> None:
    admin = IntercomAdmin(intercom.http, admin_id=HUMAN_ADMIN)
    with pytest.raises(FatalAPIError) as caught:
        await admin.reply("999999", "Hello?")
    assert caught.value.status == 404
    assert TOKEN not in str(caught.value)
    async with intercom_http(intercom.url, "wrong-token") as http:
        with pytest.raises(FatalAPIError) as refused:
            await find_human_admins(http)
    assert refused.value.status == 401
