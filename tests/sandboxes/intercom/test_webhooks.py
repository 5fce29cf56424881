"""Signed ``notification_event`` webhooks for every change, delivered to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from sandboxes.base import LoopbackReceiver, ManualClock, run_sandboxes
from sandboxes.intercom import sign, verify
from tests.sandboxes.intercom.conftest import SECRET, IntercomEnv, make_sandbox

ADMIN = "991267002"


def notifications(env: IntercomEnv) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in env.receiver.deliveries]


async def new_contact(env: IntercomEnv, **fields: Any) -> dict[str, Any]:
    response = await env.http.post("/contacts", json={"email": "w@example.com", **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_conversation(env: IntercomEnv) -> str:
    contact = await new_contact(env)
    response = await env.http.post(
        "/conversations", json={"from": {"type": "user", "id": contact["id"]}, "body": "hi"}
    )
    conversation_id: str = response.json()["conversation_id"]
    return conversation_id


async def admin_part(env: IntercomEnv, conversation_id: str, **body: Any) -> None:
    response = await env.http.post(
        f"/conversations/{conversation_id}/parts", json={"admin_id": ADMIN, **body}
    )
    assert response.status_code == 200, response.text


async def reply(env: IntercomEnv, conversation_id: str, **body: Any) -> None:
    response = await env.http.post(f"/conversations/{conversation_id}/reply", json=body)
    assert response.status_code == 200, response.text


Action = Callable[[IntercomEnv, str], Awaitable[None]]


async def _user_reply(env: IntercomEnv, cid: str) -> None:
    contact_id = (await env.http.get(f"/conversations/{cid}")).json()["contacts"]["contacts"][0]
    await reply(
        env,
        cid,
        message_type="comment",
        type="user",
        intercom_user_id=contact_id["id"],
        body="more",
    )


async def _tag(env: IntercomEnv, cid: str) -> None:
    tag = (await env.http.post("/tags", json={"name": "vip"})).json()
    await env.http.post(f"/conversations/{cid}/tags", json={"id": tag["id"], "admin_id": ADMIN})


CONVERSATION_ACTIONS: list[tuple[str, Action, str]] = [
    ("user-reply", _user_reply, "conversation.user.replied"),
    (
        "admin-reply",
        lambda env, cid: reply(
            env, cid, message_type="comment", type="admin", admin_id=ADMIN, body="ok"
        ),
        "conversation.admin.replied",
    ),
    (
        "admin-note",
        lambda env, cid: reply(
            env, cid, message_type="note", type="admin", admin_id=ADMIN, body="n"
        ),
        "conversation.admin.noted",
    ),
    (
        "close",
        lambda env, cid: admin_part(env, cid, message_type="close", type="admin"),
        "conversation.admin.closed",
    ),
    (
        "open",
        lambda env, cid: admin_part(env, cid, message_type="open"),
        "conversation.admin.opened",
    ),
    (
        "snooze",
        lambda env, cid: admin_part(env, cid, message_type="snoozed", snoozed_until=1900000000),
        "conversation.admin.snoozed",
    ),
    (
        "assign",
        lambda env, cid: admin_part(
            env, cid, message_type="assignment", type="admin", assignee_id=ADMIN
        ),
        "conversation.admin.assigned",
    ),
    ("tag", _tag, "conversation_part.tag.created"),
]


@pytest.mark.parametrize(
    ("action", "topic"),
    [a[1:] for a in CONVERSATION_ACTIONS],
    ids=[a[0] for a in CONVERSATION_ACTIONS],
)
async def test_conversation_change_sends_its_topic(
    intercom: IntercomEnv, action: Action, topic: str
) -> None:
    cid = await new_conversation(intercom)
    await action(intercom, cid)
    await intercom.drain()
    sent = notifications(intercom)
    assert [n["topic"] for n in sent] == [
        "contact.user.created",
        "conversation.user.created",
        topic,
    ]
    last = sent[-1]
    assert last["type"] == "notification_event"
    assert last["data"]["type"] == "notification_event_data"
    assert last["data"]["item"]["type"] == "conversation"
    assert last["data"]["item"]["id"] == cid
    if topic != "conversation_part.tag.created":
        # Only the parts the change created travel with the notification.
        parts = last["data"]["item"]["conversation_parts"]["conversation_parts"]
        assert len(parts) == 1


async def test_contact_topics(intercom: IntercomEnv) -> None:
    contact = await new_contact(intercom)
    await intercom.http.put(f"/contacts/{contact['id']}", json={"name": "Renamed"})
    await intercom.http.put(f"/contacts/{contact['id']}", json={"name": "Renamed"})  # no change
    tag = (await intercom.http.post("/tags", json={"name": "beta"})).json()
    await intercom.http.post(f"/contacts/{contact['id']}/tags", json={"id": tag["id"]})
    await new_contact(intercom, email="lead@example.com", role="lead")
    await intercom.drain()
    sent = notifications(intercom)
    assert [n["topic"] for n in sent] == [
        "contact.user.created",
        "contact.user.updated",
        "contact.user.tag.created",
        "contact.lead.created",
    ]
    assert sent[1]["data"]["item"]["name"] == "Renamed"
    assert sent[2]["data"]["item"]["tag"]["name"] == "beta"


async def test_every_delivery_is_signed_with_the_client_secret(intercom: IntercomEnv) -> None:
    cid = await new_conversation(intercom)
    await admin_part(intercom, cid, message_type="close", type="admin")
    await intercom.drain()
    assert len(intercom.receiver.deliveries) == 3
    for delivery in intercom.receiver.deliveries:
        expected = "sha1=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha1).hexdigest()
        assert delivery.headers["X-Hub-Signature"] == expected
        assert verify(delivery.body, delivery.headers["X-Hub-Signature"], SECRET)
        assert not verify(delivery.body + b" ", delivery.headers["X-Hub-Signature"], SECRET)
        assert not verify(delivery.body, expected, "another-secret")
        assert delivery.path == "/webhooks/intercom"


def test_signature_known_vector() -> None:
    # HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog"), RFC 2104 test value.
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign(body, "key") == "sha1=de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"


async def test_retry_resigns_with_incremented_delivery_attempts(clock: ManualClock) -> None:
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(clock=clock, webhook_url=receiver.url)
        receiver.fail_next(1, status=500)
        async with run_sandboxes([sandbox]) as running:
            headers = {"Authorization": "Bearer test-intercom-token"}
            async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as c:
                await c.post("/contacts", json={"email": "r@example.com"})
            assert sandbox.context.webhooks is not None
            await sandbox.context.webhooks.drain()
    first, second = receiver.deliveries
    assert (first.status, second.status) == (500, 200)
    one, two = json.loads(first.body), json.loads(second.body)
    assert (one["delivery_attempts"], two["delivery_attempts"]) == (1, 2)
    assert one["id"] == two["id"]
    assert verify(second.body, second.headers["X-Hub-Signature"], SECRET)
    # Intercom retries after a minute; the manual clock recorded the wait instead of sleeping.
    assert clock.monotonic() >= 60


async def test_unsubscribed_topics_are_not_sent(clock: ManualClock) -> None:
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(
            clock=clock,
            webhook_url=receiver.url,
            webhook_topics=frozenset({"contact.user.updated"}),
            send_ping_on_start=True,
        )
        async with run_sandboxes([sandbox]) as running:
            headers = {"Authorization": "Bearer test-intercom-token"}
            async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as c:
                contact = (await c.post("/contacts", json={"email": "u@example.com"})).json()
                await c.put(f"/contacts/{contact['id']}", json={"name": "N"})
            assert sandbox.context.webhooks is not None
            await sandbox.context.webhooks.drain()
    topics = [json.loads(d.body)["topic"] for d in receiver.deliveries]
    assert topics == ["ping", "contact.user.updated"]
    assert json.loads(receiver.deliveries[0].body)["data"]["item"]["type"] == "ping"


# -- topics checked against "Webhook models" (2.x topic table) ---------------------------------


async def test_opening_a_snoozed_conversation_sends_unsnoozed(intercom: IntercomEnv) -> None:
    cid = await new_conversation(intercom)
    await admin_part(intercom, cid, message_type="snoozed", snoozed_until=1900000000)
    await admin_part(intercom, cid, message_type="open")
    await intercom.drain()
    last = notifications(intercom)[-1]
    assert last["topic"] == "conversation.admin.unsnoozed"
    assert last["data"]["item"]["state"] == "open"
    assert last["data"]["item"]["snoozed_until"] is None


async def test_a_snooze_that_runs_out_reopens_without_a_notification(
    intercom: IntercomEnv,
) -> None:
    # The docs name only an admin's unsnooze; a silent reopen is the conservative reading
    # (UNVERIFIED), and the product must not depend on a notification here.
    cid = await new_conversation(intercom)
    until = int(intercom.clock.now().timestamp()) + 3600
    await admin_part(intercom, cid, message_type="snoozed", snoozed_until=until)
    intercom.clock.advance(3601)
    conversation = (await intercom.http.get(f"/conversations/{cid}")).json()
    assert (conversation["state"], conversation["snoozed_until"]) == ("open", None)
    await intercom.drain()
    assert notifications(intercom)[-1]["topic"] == "conversation.admin.snoozed"


async def test_snooze_expiry_topic_is_configurable(clock: ManualClock) -> None:
    async with LoopbackReceiver() as receiver:
        sandbox = make_sandbox(
            clock=clock,
            webhook_url=receiver.url,
            snooze_expiry_topic="conversation.admin.unsnoozed",
        )
        async with run_sandboxes([sandbox]) as running:
            headers = {"Authorization": "Bearer test-intercom-token"}
            async with httpx.AsyncClient(base_url=running.url("intercom"), headers=headers) as c:
                contact = (await c.post("/contacts", json={"email": "s@example.com"})).json()
                started = await c.post(
                    "/conversations",
                    json={"from": {"type": "user", "id": contact["id"]}, "body": "hi"},
                )
                cid = started.json()["conversation_id"]
                until = int(clock.now().timestamp()) + 60
                await c.post(
                    f"/conversations/{cid}/parts",
                    json={"admin_id": ADMIN, "message_type": "snoozed", "snoozed_until": until},
                )
                clock.advance(61)
                await c.get("/me")  # any request wakes the snoozes that are due
            assert sandbox.context.webhooks is not None
            await sandbox.context.webhooks.drain()
    last = json.loads(receiver.deliveries[-1].body)
    assert last["topic"] == "conversation.admin.unsnoozed"
    assert last["data"]["item"]["state"] == "open"


async def test_a_priority_change_in_the_inbox_sends_priority_updated(
    intercom: IntercomEnv,
) -> None:
    cid = await new_conversation(intercom)
    path = f"/_sandbox/inbox/conversations/{cid}/priority"
    response = await intercom.http.put(path, json={"admin_id": ADMIN, "priority": "priority"})
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == "priority"
    again = await intercom.http.put(path, json={"admin_id": ADMIN, "priority": "priority"})
    assert again.status_code == 200  # unchanged: nothing is sent
    wrong = await intercom.http.put(path, json={"admin_id": ADMIN, "priority": "high"})
    assert wrong.status_code == 400
    assert wrong.json()["type"] == "error.list"
    await intercom.drain()
    topics = [n["topic"] for n in notifications(intercom)]
    assert topics.count("conversation.priority.updated") == 1
    last = notifications(intercom)[-1]
    assert last["data"]["item"]["priority"] == "priority"


async def test_the_rest_api_cannot_set_priority(intercom: IntercomEnv) -> None:
    # update_conversation_request (2.14) has no priority: the inbox is the only way.
    cid = await new_conversation(intercom)
    await intercom.http.put(f"/conversations/{cid}", json={"priority": "priority"})
    assert (await intercom.http.get(f"/conversations/{cid}")).json()["priority"] == "not_priority"


async def test_removing_a_conversation_tag_sends_nothing(intercom: IntercomEnv) -> None:
    # No conversation tag-removal topic exists: reconciliation must find removed tags.
    cid = await new_conversation(intercom)
    await _tag(intercom, cid)
    tag_id = (await intercom.http.get(f"/conversations/{cid}")).json()["tags"]["tags"][0]["id"]
    response = await intercom.http.request(
        "DELETE", f"/conversations/{cid}/tags/{tag_id}", json={"admin_id": ADMIN}
    )
    assert response.status_code == 200, response.text
    assert (await intercom.http.get(f"/conversations/{cid}")).json()["tags"]["tags"] == []
    await intercom.drain()
    assert notifications(intercom)[-1]["topic"] == "conversation_part.tag.created"


async def test_removing_a_contact_tag_sends_tag_deleted(intercom: IntercomEnv) -> None:
    contact = await new_contact(intercom)
    tag = (await intercom.http.post("/tags", json={"name": "beta"})).json()
    await intercom.http.post(f"/contacts/{contact['id']}/tags", json={"id": tag["id"]})
    await intercom.http.delete(f"/contacts/{contact['id']}/tags/{tag['id']}")
    await intercom.http.delete(f"/contacts/{contact['id']}/tags/{tag['id']}")  # not tagged now
    await intercom.drain()
    sent = notifications(intercom)
    assert [n["topic"] for n in sent][-2:] == [
        "contact.user.tag.created",
        "contact.user.tag.deleted",
    ]
    item = sent[-1]["data"]["item"]
    assert (item["type"], item["tag"]["id"], item["contact"]["id"]) == (
        "contact_tag",
        tag["id"],
        contact["id"],
    )
    assert item["contact"]["tags"]["data"] == []
