"""The sandbox's admin-initiated messages (``POST /messages``), checked against the official
2.14 spec: the message, the conversation it opens, its notification and the documented errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandboxes.intercom.conftest import IntercomEnv
from tests.sandboxes.intercom.test_contract import openapi, schema_validator, validate

__all__ = ["openapi"]  # the fixture, re-exported for pytest

ADMIN = "991267002"
OpenAPI = Any


async def _contact(env: IntercomEnv, **fields: Any) -> dict[str, Any]:
    response = await env.http.post("/contacts", json={"email": "m@example.com", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _message(contact: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "message_type": "in_app",
        "body": "We received your ticket",
        "from": {"type": "admin", "id": int(ADMIN)},
        "to": {"type": contact["role"], "id": contact["id"]},
        "create_conversation_without_contact_reply": True,
    } | overrides


async def test_a_message_opens_a_conversation_and_notifies(
    openapi: OpenAPI, intercom: IntercomEnv
) -> None:
    contact = await _contact(intercom)
    response = await intercom.http.post("/messages", json=_message(contact))
    assert response.status_code == 200, response.text
    validate(openapi, response)
    message = response.json()
    assert (message["type"], message["message_type"], message["body"]) == (
        "admin_message",
        "inapp",
        "We received your ticket",
    )
    assert message["owner"]["id"] == ADMIN
    conversation = (await intercom.http.get(f"/conversations/{message['conversation_id']}")).json()
    assert conversation["source"]["id"] == message["id"]
    assert conversation["source"]["delivered_as"] == "admin_initiated"
    assert conversation["source"]["author"]["id"] == ADMIN
    assert conversation["source"]["body"] == "<p>We received your ticket</p>"
    assert [c["id"] for c in conversation["contacts"]["contacts"]] == [contact["id"]]
    assert (conversation["state"], conversation["waiting_since"]) == ("open", None)
    assert conversation["first_contact_reply"] is None
    await intercom.drain()
    topics = [json.loads(d.body)["topic"] for d in intercom.receiver.deliveries]
    assert topics == ["contact.user.created", "conversation.admin.single.created"]
    item = json.loads(intercom.receiver.deliveries[-1].body)["data"]["item"]
    assert item["id"] == message["conversation_id"]
    schema_validator(openapi, "conversation").validate(item)


async def test_the_contacts_reply_sets_the_first_contact_reply(intercom: IntercomEnv) -> None:
    contact = await _contact(intercom)
    message = (await intercom.http.post("/messages", json=_message(contact))).json()
    intercom.clock.advance(60)
    replied = await intercom.http.post(
        f"/conversations/{message['conversation_id']}/reply",
        json={
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": contact["id"],
            "body": "thanks",
        },
    )
    assert replied.json()["first_contact_reply"]["created_at"] == message["created_at"] + 60


async def test_without_opening_a_conversation_there_is_none(intercom: IntercomEnv) -> None:
    contact = await _contact(intercom)
    body = _message(contact, create_conversation_without_contact_reply=False)
    message = (await intercom.http.post("/messages", json=body)).json()
    assert "conversation_id" not in message
    assert intercom.sandbox.state.conversations == {}
    found = await intercom.http.post(
        "/conversations/search",
        json={"query": {"field": "source.id", "operator": "=", "value": message["id"]}},
    )
    assert found.json()["total_count"] == 0
    await intercom.drain()
    assert [json.loads(d.body)["topic"] for d in intercom.receiver.deliveries] == [
        "contact.user.created"
    ]


async def test_an_email_message_needs_a_subject(openapi: OpenAPI, intercom: IntercomEnv) -> None:
    contact = await _contact(intercom)
    body = _message(contact, message_type="email", template="plain", subject="Your ticket")
    response = await intercom.http.post("/messages", json=body)
    assert response.status_code == 200
    validate(openapi, response)
    assert (response.json()["message_type"], response.json()["subject"]) == ("email", "Your ticket")
    conversation_id = response.json()["conversation_id"]
    conversation = (await intercom.http.get(f"/conversations/{conversation_id}")).json()
    assert conversation["source"]["type"] == "email"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        pytest.param({"body": None}, 400, "parameter_invalid", id="no-body"),
        pytest.param(
            {"message_type": "email", "template": "plain"},
            422,
            "parameter_not_found",
            id="email-without-subject",
        ),
        pytest.param({"message_type": "sms"}, 400, "parameter_invalid", id="bad-message-type"),
        pytest.param({"to": None}, 400, "parameter_not_found", id="no-recipient"),
        pytest.param(
            {"to": {"type": "user", "id": "0" * 24}}, 404, "not_found", id="unknown-contact"
        ),
        pytest.param(
            {"to": {"type": "lead", "id": None}}, 400, "parameter_not_found", id="recipient-no-id"
        ),
        pytest.param(
            {"from": {"type": "admin", "id": 1}}, 404, "admin_not_found", id="unknown-admin"
        ),
        pytest.param(
            {"from": {"type": "user", "id": 1}}, 400, "parameter_invalid", id="not-from-an-admin"
        ),
    ],
)
async def test_documented_errors(
    openapi: OpenAPI, intercom: IntercomEnv, change: dict[str, Any], status: int, code: str
) -> None:
    contact = await _contact(intercom)
    body = {k: v for k, v in (_message(contact) | change).items() if v is not None}
    response = await intercom.http.post("/messages", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code
    # 404 is documented in the operation's prose only, so the body is checked as the spec's
    # ``error`` model rather than through the operation's responses.
    schema_validator(openapi, "error").validate(response.json())
    assert intercom.sandbox.state.conversations == {}


async def test_recipients_by_external_id_and_several_at_once(intercom: IntercomEnv) -> None:
    one = await _contact(intercom, external_id="70")
    two = await _contact(intercom, email="two@example.com")
    by_user_id = await intercom.http.post(
        "/messages", json=_message(one, to={"type": "user", "user_id": "70"})
    )
    assert by_user_id.status_code == 200, by_user_id.text
    both = await intercom.http.post(
        "/messages",
        json=_message(
            one, to=[{"type": "user", "id": one["id"]}, {"type": "user", "id": two["id"]}]
        ),
    )
    conversation = (
        await intercom.http.get(f"/conversations/{both.json()['conversation_id']}")
    ).json()
    assert [c["id"] for c in conversation["contacts"]["contacts"]] == [one["id"], two["id"]]
    await intercom.drain()
    topics = [json.loads(d.body)["topic"] for d in intercom.receiver.deliveries]
    # only the one-to-one message is an "admin initiated 1:1 conversation"
    assert topics.count("conversation.admin.single.created") == 1
