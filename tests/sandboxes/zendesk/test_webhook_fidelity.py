"""Events the normaliser maps that the sandbox once never sent, end to end: act through the
sandbox's REST API, catch the signed webhook on a real receiver, normalise it, and check the
canonical event.

Sources: "Ticket events" (https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/)
and "User events" (https://developer.zendesk.com/api-reference/webhooks/event-types/user-events);
the endpoints are the spec's ``MakeTicketCommentPrivate``, ``DeleteTicketPermanently``,
``BulkPermanentlyDeleteTickets`` and ``DeleteUser``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from connectors.base.links import case_link_id
from connectors.zendesk.normalize import ZendeskNormaliser
from schemas.models import (
    ActorKind,
    Case,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    RawDelivery,
)
from tests.sandboxes.zendesk.conftest import ZendeskEnv

PREFIX = "zen:event-type:"


async def _events(env: ZendeskEnv) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        await env.drain()
    assert env.receiver is not None
    return [json.loads(d.body) for d in env.receiver.deliveries]


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == PREFIX + kind]


def _normalise(env: ZendeskEnv, event: dict[str, Any]) -> list[Envelope]:
    normaliser = ZendeskNormaliser(connector_id="zd", settings=env.connector_settings())
    delivery = RawDelivery(
        delivery_id=f"zendesk:{event['id']}",
        connector_id="zd",
        platform=Platform.ZENDESK,
        received_at=datetime(2025, 1, 1, tzinfo=UTC),
        body=json.dumps(event).encode(),
        signature_verified=True,
    )
    return normaliser.normalise(delivery)


async def test_making_a_comment_private_sends_comment_made_private(
    zendesk_hooks: ZendeskEnv,
) -> None:
    env = zendesk_hooks
    ticket = await env.create_ticket(comment={"body": "Card ends 4242", "public": True})
    comments = (await env.http.get(f"/api/v2/tickets/{ticket['id']}/comments")).json()
    comment_id = comments["comments"][0]["id"]
    path = f"/api/v2/tickets/{ticket['id']}/comments/{comment_id}/make_private"

    response = await env.http.put(path)
    assert response.status_code == 200
    assert response.text == ""  # the spec's answer is an empty response
    again = await env.http.put(path)  # already private: nothing changes, nothing is sent
    assert again.status_code == 200

    after = (await env.http.get(f"/api/v2/tickets/{ticket['id']}/comments")).json()
    assert after["comments"][0]["public"] is False
    audits = (await env.http.get(f"/api/v2/tickets/{ticket['id']}/audits")).json()["audits"]
    assert {"type": "CommentPrivacyChange", "comment_id": comment_id, "public": False}.items() <= (
        audits[-1]["events"][0].items()
    )

    events = await _events(env)
    (private,) = _of(events, "ticket.comment_made_private")
    (added,) = _of(events, "ticket.comment_added")
    assert private["subject"] == f"zen:ticket:{ticket['id']}"
    assert private["event"]["comment"]["id"] == str(comment_id)
    assert private["event"]["comment"]["is_public"] is False

    (message,) = _normalise(env, private)
    assert (message.source.entity_type, message.op) == (EntityType.MESSAGE, Op.UPDATE)
    assert message.source.entity_id == str(comment_id)
    assert message.changed_fields == ["public"]
    assert isinstance(message.data, Message)
    assert message.data.public is False
    assert message.data.case_id == str(ticket["id"])
    # The integration user made it private: echo detection must be able to see that.
    assert message.source.actor.kind is ActorKind.INTEGRATION
    # The update lands on the same thread as the comment it changes.
    (created,) = _normalise(env, added)
    assert message.link_id == created.link_id == case_link_id("zendesk", "zd", str(ticket["id"]))


async def test_a_comment_of_another_ticket_cannot_be_made_private(
    zendesk_hooks: ZendeskEnv,
) -> None:
    env = zendesk_hooks
    one, two = await env.create_ticket(), await env.create_ticket()
    comments = (await env.http.get(f"/api/v2/tickets/{one['id']}/comments")).json()["comments"]
    response = await env.http.put(
        f"/api/v2/tickets/{two['id']}/comments/{comments[0]['id']}/make_private"
    )
    assert response.status_code == 404
    assert _of(await _events(env), "ticket.comment_made_private") == []


async def test_permanent_deletion_follows_a_soft_delete_and_sends_permanently_deleted(
    zendesk_hooks: ZendeskEnv,
) -> None:
    env = zendesk_hooks
    ticket = await env.create_ticket()
    tid = ticket["id"]
    live = await env.http.delete(f"/api/v2/deleted_tickets/{tid}")
    assert live.status_code == 404  # only a soft-deleted ticket can be deleted for good

    assert (await env.http.delete(f"/api/v2/tickets/{tid}")).status_code == 204
    response = await env.http.delete(f"/api/v2/deleted_tickets/{tid}")
    assert response.status_code == 200
    assert response.json()["job_status"]["status"] == "queued"
    assert (await env.http.get(f"/api/v2/tickets/{tid}")).status_code == 404
    again = await env.http.delete(f"/api/v2/deleted_tickets/{tid}")
    assert again.status_code == 404  # nothing of it is left

    events = await _events(env)
    kinds = [e["type"].removeprefix(PREFIX) for e in events]
    assert kinds[-2:] == ["ticket.soft_deleted", "ticket.permanently_deleted"]
    (created, *_) = _normalise(env, _of(events, "ticket.created")[0])
    for kind in ("ticket.soft_deleted", "ticket.permanently_deleted"):
        (deleted,) = _normalise(env, _of(events, kind)[0])
        assert (deleted.source.entity_type, deleted.op) == (EntityType.CASE, Op.DELETE)
        assert deleted.source.entity_id == str(tid)
        assert deleted.data is None
        assert deleted.link_id == created.link_id


async def test_destroy_many_deletes_each_soft_deleted_ticket_and_reports_the_rest(
    zendesk_hooks: ZendeskEnv,
) -> None:
    env = zendesk_hooks
    one, two, live = [await env.create_ticket() for _ in range(3)]
    for ticket in (one, two):
        await env.http.delete(f"/api/v2/tickets/{ticket['id']}")
    ids = f"{one['id']},{live['id']},{two['id']}"
    response = await env.http.delete("/api/v2/deleted_tickets/destroy_many", params={"ids": ids})
    assert response.status_code == 200
    job = response.json()["job_status"]
    finished = (await env.http.get(f"/api/v2/job_statuses/{job['id']}")).json()["job_status"]
    assert [(r["id"], r["success"]) for r in finished["results"]] == [
        (one["id"], True),
        (live["id"], False),
        (two["id"], True),
    ]
    assert (await env.http.get(f"/api/v2/tickets/{live['id']}")).status_code == 200
    gone = _of(await _events(env), "ticket.permanently_deleted")
    assert [e["detail"]["id"] for e in gone] == [str(one["id"]), str(two["id"])]


async def test_deleting_an_end_user_sends_user_deleted_and_deletes_the_contact(
    zendesk_hooks: ZendeskEnv,
) -> None:
    env = zendesk_hooks
    created = await env.http.post(
        "/api/v2/users", json={"user": {"name": "Ida", "email": "ida@example.com"}}
    )
    uid = created.json()["user"]["id"]
    response = await env.http.delete(f"/api/v2/users/{uid}")
    assert response.status_code == 200
    assert response.json()["user"]["active"] is False
    assert (await env.http.get(f"/api/v2/users/{uid}")).status_code == 404

    events = await _events(env)
    assert [e["type"].removeprefix(PREFIX) for e in events] == [
        "user.created",
        "user.active_changed",
        "user.deleted",
    ]
    active, deleted = events[1:]
    assert active["event"]["current"] is False
    assert active["event"]["previous"] is True
    assert deleted["subject"] == f"zen:user:{uid}"
    assert deleted["detail"]["id"] == str(uid)

    (contact,) = _normalise(env, events[0])
    assert _normalise(env, active) == []  # no canonical field for it
    (gone,) = _normalise(env, deleted)
    assert (gone.source.entity_type, gone.op) == (EntityType.CONTACT, Op.DELETE)
    assert gone.source.entity_id == str(uid)
    assert gone.data is None
    # The detail keeps the email, so the delete names the contact the create linked.
    assert gone.link_id == contact.link_id


async def test_deleting_an_agent_is_not_a_contact_deletion(zendesk_hooks: ZendeskEnv) -> None:
    env = zendesk_hooks
    created = await env.http.post(
        "/api/v2/users",
        json={"user": {"name": "Agent Kay", "email": "kay@example.com", "role": "agent"}},
    )
    uid = created.json()["user"]["id"]
    assert (await env.http.delete(f"/api/v2/users/{uid}")).status_code == 200
    (deleted,) = _of(await _events(env), "user.deleted")
    assert _normalise(env, deleted) == []  # agents are not customers


async def test_assigning_an_agent_sends_agent_assignment_changed_and_end_users_are_refused(
    zendesk_hooks: ZendeskEnv,
) -> None:
    """Only staff can be assigned ("Tickets": ``assignee_id`` is an agent); the change is
    ``ticket.agent_assignment_changed`` with the agent ids as ``current`` / ``previous``, which
    the normaliser reports as the ``assignee`` field, the owner named by id."""
    env = zendesk_hooks
    ticket = await env.create_ticket(requester={"name": "Maria", "email": "m@example.com"})
    agent = env.sandbox.core.state.user_by_email("ada@sandbox.example")
    assert agent is not None
    path = f"/api/v2/tickets/{ticket['id']}"
    refused = await env.http.put(path, json={"ticket": {"assignee_id": ticket["requester_id"]}})
    assert refused.status_code == 422
    assert "Assignee" in refused.text
    assigned = await env.http.put(path, json={"ticket": {"assignee_id": agent.id}})
    assert assigned.json()["ticket"]["assignee_id"] == agent.id
    cleared = await env.http.put(path, json={"ticket": {"assignee_id": None}})
    assert cleared.json()["ticket"]["assignee_id"] is None

    changes = _of(await _events(env), "ticket.agent_assignment_changed")
    assert [(e["event"]["current"], e["event"]["previous"]) for e in changes] == [
        (str(agent.id), None),
        (None, str(agent.id)),
    ]
    (first,) = _normalise(env, changes[0])
    assert first.changed_fields == ["assignee"]
    assert isinstance(first.data, Case)
    owner = first.data.assignee
    assert owner is not None
    assert (owner.kind, owner.id, owner.email) == (ActorKind.AGENT, str(agent.id), None)
    (second,) = _normalise(env, changes[1])
    assert isinstance(second.data, Case)
    assert second.data.assignee is None
