"""The Zendesk actors against the real sandbox on loopback. The agent signs in with an OAuth
token of its own (configured for the account admin), so its writes carry the agent as actor
and author, never the integration user; the requester's ticket creates the end user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandboxes.base import LoopbackReceiver, ManualClock
from sandboxes.zendesk import OAuthTokenSpec, ZendeskSandboxConfig
from sandboxes.zendesk.actors import (
    ZendeskAgent,
    ZendeskRequester,
    api_token_auth,
    oauth_auth,
    zendesk_http,
)
from schemas.errors import FatalAPIError
from tests.sandboxes.zendesk.conftest import EMAIL, TOKEN, ZendeskEnv, serve

ADMIN_EMAIL = ZendeskSandboxConfig().admin_email
AGENT_TOKEN = "agent-oauth-token"


@dataclass
class Desk:
    env: ZendeskEnv
    agent: ZendeskAgent
    form: httpx.AsyncClient

    async def events(self, kind: str) -> list[dict[str, Any]]:
        await self.env.drain()
        assert self.env.receiver is not None
        bodies = [json.loads(d.body) for d in self.env.receiver.deliveries]
        return [b for b in bodies if b["type"] == f"zen:event-type:{kind}"]


@pytest.fixture
async def desk(clock: ManualClock, receiver: LoopbackReceiver) -> AsyncIterator[Desk]:
    tokens = {
        "sandbox-oauth-token": OAuthTokenSpec(email=EMAIL, scopes=("read", "write")),
        AGENT_TOKEN: OAuthTokenSpec(email=ADMIN_EMAIL, scopes=("read", "write")),
    }
    async with (
        serve(clock, receiver, oauth_tokens=tokens) as env,
        zendesk_http(env.url, oauth_auth(AGENT_TOKEN)) as agent_http,
        zendesk_http(env.url, api_token_auth(ADMIN_EMAIL, TOKEN)) as form,
    ):
        yield Desk(env, ZendeskAgent(agent_http), form)


def _user_id(env: ZendeskEnv, email: str) -> int:
    user = env.sandbox.core.state.user_by_email(email)
    assert user is not None
    return user.id


async def test_the_agent_is_its_own_user_not_the_integration(desk: Desk) -> None:
    admin_id, integration_id = _user_id(desk.env, ADMIN_EMAIL), _user_id(desk.env, EMAIL)
    assert admin_id != integration_id
    assert await desk.agent.user_id() == admin_id


async def test_the_requester_opens_a_ticket_by_email(desk: Desk) -> None:
    requester = ZendeskRequester(desk.form, name="Ann Lee", email="ann@northwind.example")
    ticket_id = await requester.open_ticket(
        "Export fails", "Since yesterday.", idempotency_key="k-1"
    )
    again = await requester.open_ticket("Export fails", "Since yesterday.", idempotency_key="k-1")
    assert again == ticket_id  # a retried create does not open a second ticket
    ticket = await desk.agent.ticket(ticket_id)
    assert ticket["requester_id"] == requester.user_id
    user = (await desk.env.http.get(f"/api/v2/users/{requester.user_id}")).json()["user"]
    assert (user["name"], user["email"], user["role"]) == (
        "Ann Lee",
        "ann@northwind.example",
        "end-user",
    )
    assert len(desk.env.sandbox.core.state.tickets) == 1
    await requester.follow_up(ticket_id, "It also fails for small reports.")
    [_, follow_up] = (await desk.events("ticket.comment_added"))[-2:]
    assert follow_up["event"]["comment"]["author"]["id"] == str(requester.user_id)
    assert follow_up["event"]["comment"]["author"]["is_staff"] is False


async def test_the_agents_reply_is_authored_by_the_agent(desk: Desk) -> None:
    ticket = await desk.env.create_ticket()  # made by the integration, as an escalation is
    admin_id, integration_id = _user_id(desk.env, ADMIN_EMAIL), _user_id(desk.env, EMAIL)
    await desk.agent.reply(ticket["id"], "We are on it.")
    await desk.agent.note(ticket["id"], "Engineering knows.")
    comments = await desk.events("ticket.comment_added")
    reply, note = comments[-2:]
    for event in (reply, note):
        assert event["detail"]["actor_id"] == str(admin_id) != str(integration_id)
        assert event["event"]["comment"]["author"]["id"] == str(admin_id)
        assert event["event"]["comment"]["author"]["is_staff"] is True
    assert reply["event"]["comment"]["is_public"] is True
    assert note["event"]["comment"]["is_public"] is False
    listed = (await desk.env.http.get(f"/api/v2/tickets/{ticket['id']}/comments")).json()
    assert [c["author_id"] for c in listed["comments"]] == [integration_id, admin_id, admin_id]


async def test_solve_reopen_priority_and_tags(desk: Desk) -> None:
    ticket_id = int((await desk.env.create_ticket(tags=["escalated"]))["id"])
    await desk.agent.set_priority(ticket_id, "urgent")
    assert await desk.agent.tag(ticket_id, add=["vip", "billing"], remove=["escalated"]) == [
        "vip",
        "billing",
    ]
    await desk.agent.solve(ticket_id, "Fixed, sorry for the wait.")
    assert (await desk.agent.ticket(ticket_id))["status"] == "solved"
    await desk.agent.reopen(ticket_id)
    ticket = await desk.agent.ticket(ticket_id)
    assert (ticket["status"], ticket["priority"]) == ("open", "urgent")
    statuses = [e["event"] for e in await desk.events("ticket.status_changed")]
    assert [(s["previous"], s["current"]) for s in statuses] == [
        ("NEW", "SOLVED"),
        ("SOLVED", "OPEN"),
    ]
    admin_id = str(_user_id(desk.env, ADMIN_EMAIL))
    assert {e["detail"]["actor_id"] for e in await desk.events("ticket.status_changed")} == {
        admin_id
    }


async def test_the_agent_finds_a_mirrored_ticket_when_it_appears(desk: Desk) -> None:
    assert await desk.agent.wait_for_ticket("lnk_missing", patience_s=0.2) is None

    async def mirror_later() -> None:
        await asyncio.sleep(0.3)
        await desk.env.create_ticket(external_id="lnk_abc")

    waiting = asyncio.create_task(desk.agent.wait_for_ticket("lnk_abc", patience_s=5))
    await mirror_later()
    found = await waiting
    assert found is not None
    assert found["external_id"] == "lnk_abc"


async def test_a_second_address_goes_on_the_customers_profile(desk: Desk) -> None:
    first = await desk.agent.record_secondary_email(
        name="Bo Chen", email="bo@globex.example", secondary="bo@example.net"
    )
    again = await desk.agent.record_secondary_email(
        name="Bo Chen", email="bo@globex.example", secondary="bo@example.net"
    )
    assert first == again
    identities = (await desk.env.http.get(f"/api/v2/users/{first}/identities")).json()
    assert [(i["value"], i["primary"]) for i in identities["identities"]] == [
        ("bo@globex.example", True),
        ("bo@example.net", False),
    ]


async def test_refusals_are_fatal_api_errors(desk: Desk) -> None:
    with pytest.raises(FatalAPIError) as caught:
        await desk.agent.reply(424242, "Hello?")
    assert caught.value.status == 404
    async with zendesk_http(desk.env.url, oauth_auth("not-a-token")) as http:
        with pytest.raises(FatalAPIError) as refused:
            await ZendeskAgent(http).user_id()
    assert refused.value.status == 401
    assert "not-a-token" not in str(refused.value)
