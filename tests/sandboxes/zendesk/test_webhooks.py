"""Event webhooks through a real loopback receiver: signed, shaped and counted as Zendesk's."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

from sandboxes.base import LoopbackReceiver
from sandboxes.zendesk import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook
from tests.sandboxes.zendesk.conftest import SECRET, ZendeskEnv

EVENT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
SIGNED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PLAN = 360001000001


def verified_events(receiver: LoopbackReceiver) -> list[dict[str, Any]]:
    """Every delivery, after checking its signature the way a receiver must."""
    events = []
    for delivery in receiver.deliveries:
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        stamp = headers[TIMESTAMP_HEADER.lower()]
        assert SIGNED_AT.match(stamp)
        assert headers[SIGNATURE_HEADER.lower()] == sign_webhook(SECRET, stamp, delivery.body)
        events.append(json.loads(delivery.body))
    return events


async def settle(env: ZendeskEnv) -> None:
    async with asyncio.timeout(10):
        await env.drain()


async def test_scripted_changes_produce_the_expected_events(zendesk_hooks: ZendeskEnv) -> None:
    env, http = zendesk_hooks, zendesk_hooks.http
    agent = env.sandbox.core.admin.id
    await http.post(
        "/api/v2/users/create_or_update", json={"user": {"name": "Gil", "email": "gil@example.com"}}
    )
    ticket = await env.create_ticket(requester={"name": "Hal", "email": "hal@example.com"})
    url = f"/api/v2/tickets/{ticket['id']}"
    await http.put(
        url,
        json={
            "ticket": {
                "status": "pending",
                "priority": "urgent",
                "subject": "Renamed",
                "assignee_id": agent,
                "external_id": "link-9",
                "additional_tags": ["vip"],
                "custom_fields": [{"id": PLAN, "value": "plan_pro"}],
                "comment": {"body": "looking", "public": False},
            }
        },
    )
    await http.put(url, json={"ticket": {"priority": "urgent"}})  # no change: no events
    user_id = ticket["requester_id"]
    await http.put(
        f"/api/v2/users/{user_id}", json={"user": {"name": "Hal J", "external_id": "c-1"}}
    )
    await http.post(
        f"/api/v2/users/{user_id}/identities",
        json={"identity": {"type": "email", "value": "hal@work.example"}},
    )
    token = (
        await http.post(
            "/api/v2/uploads",
            params={"filename": "a.txt"},
            content=b"a",
            headers={"Content-Type": "text/plain"},
        )
    ).json()["upload"]["token"]
    await http.put(url, json={"ticket": {"comment": {"body": "file", "uploads": [token]}}})
    await http.delete(url)
    await settle(env)

    events = verified_events(env.receiver)  # type: ignore[arg-type]
    counts = Counter(e["type"].removeprefix("zen:event-type:") for e in events)
    assert counts == {
        "user.created": 2,
        "ticket.created": 1,
        "ticket.comment_added": 3,
        "ticket.status_changed": 1,
        "ticket.priority_changed": 1,
        "ticket.subject_changed": 1,
        "ticket.agent_assignment_changed": 1,
        "ticket.external_id_changed": 1,
        "ticket.tags_changed": 1,
        "ticket.custom_field_changed": 1,
        "user.name_changed": 1,
        "user.external_id_changed": 1,
        "user.identity_created": 1,
        "ticket.attachment_linked_to_comment": 1,
        "ticket.soft_deleted": 1,
    }
    assert counts == Counter(
        {k.removeprefix("zen:event-type:"): v for k, v in env.sandbox.core.publisher.counts.items()}
    )

    update = [
        e
        for e in events
        if e["subject"] == f"zen:ticket:{ticket['id']}"
        and e["event"]["meta"]["sequence"]["total"] == 8
    ]
    assert len(update) == 8  # one API call, one sequence
    assert len({e["event"]["meta"]["sequence"]["id"] for e in update}) == 1
    assert sorted(e["event"]["meta"]["sequence"]["position"] for e in update) == list(range(1, 9))
    by_type = {e["type"].rsplit(".", 1)[1]: e for e in update}
    assert by_type["status_changed"]["event"] | {"meta": None} == {
        "current": "PENDING",
        "previous": "NEW",
        "meta": None,
    }
    assert by_type["agent_assignment_changed"]["event"]["current"] == str(agent)
    assert by_type["tags_changed"]["event"]["tags_added"] == ["vip", "plan_pro"]
    assert by_type["custom_field_changed"]["event"]["custom_field"]["id"] == str(PLAN)
    comment = by_type["comment_added"]["event"]["comment"]
    integration = env.sandbox.core.integration_user
    assert comment["is_public"] is False
    assert comment["author"] == {
        "id": str(integration.id),
        "is_staff": True,
        "name": integration.name,
    }
    detail = by_type["status_changed"]["detail"]
    # How a consumer recognises its own integration's writes: actor and channel.
    assert (detail["actor_id"], detail["via"]) == (str(integration.id), {"channel": "api"})
    assert (detail["id"], detail["status"], detail["priority"]) == (
        str(ticket["id"]),
        "PENDING",
        "URGENT",
    )
    for event in events:
        assert EVENT_TIME.match(event["time"])
        assert event["account_id"] == env.sandbox.config.account_id
        assert isinstance(event["detail"]["id"], str)
    assert {
        e["zendesk_event_version"] for e in events if e["type"].startswith("zen:event-type:ticket.")
    } == {"2022-11-06"}


async def test_user_event_detail_shape(zendesk_hooks: ZendeskEnv) -> None:
    await zendesk_hooks.http.post(
        "/api/v2/users",
        json={"user": {"name": "Ida", "email": "ida@example.com", "external_id": "crm-ida"}},
    )
    await settle(zendesk_hooks)
    (event,) = verified_events(zendesk_hooks.receiver)  # type: ignore[arg-type]
    assert event["type"] == "zen:event-type:user.created"
    assert event["subject"] == f"zen:user:{event['detail']['id']}"
    assert event["detail"] | {"created_at": None, "updated_at": None, "id": None} == {
        "created_at": None,
        "updated_at": None,
        "id": None,
        "email": "ida@example.com",
        "external_id": "crm-ida",
        "default_group_id": "0",
        "organization_id": "0",
        "role": "end-user",
    }


async def test_retries_on_503_and_409_but_not_on_400(zendesk_hooks: ZendeskEnv) -> None:
    receiver = zendesk_hooks.receiver
    assert receiver is not None
    receiver.fail_next(1, 503)
    receiver.fail_next(1, 409)
    await zendesk_hooks.http.post("/api/v2/users", json={"user": {"name": "Jo"}})
    await settle(zendesk_hooks)
    assert [d.status for d in receiver.deliveries] == [503, 409, 200]
    bodies = {d.body for d in receiver.deliveries}
    assert len(bodies) == 1  # the same event each time, with its original signature
    verified_events(receiver)
    receiver.fail_next(1, 400)
    await zendesk_hooks.http.post("/api/v2/users", json={"user": {"name": "Kim"}})
    await settle(zendesk_hooks)
    assert [d.status for d in receiver.deliveries][3:] == [400]
