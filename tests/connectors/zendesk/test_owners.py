"""Owners in Zendesk, against the sandbox: the agent directory (users with the agent or admin
role, by id and by email) and the sink writing a ticket's ``assignee_id`` for the owner a
command names by email, leaving out an email no agent has."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.base.commands import CREATED_OWNER
from connectors.base.directory import AgentDirectory
from connectors.base.fingerprints import fingerprint
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base.staff import SHARED, ZENDESK_ONLY
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    EntityRef,
    EntityType,
    Platform,
    SyncCommand,
)
from tests.sandboxes.zendesk.conftest import ZendeskEnv

ADA, CLEO = SHARED[0].email, ZENDESK_ONLY[0].email


@pytest.fixture
async def sink(zendesk: ZendeskEnv) -> AsyncIterator[ZendeskSink]:
    async with httpx.AsyncClient() as http:
        built = ZendeskSink(connector_id="zd", settings=zendesk.connector_settings(), http=http)
        yield built
        await built.aclose()


def _user_id(env: ZendeskEnv, email: str) -> str:
    user = env.sandbox.core.state.user_by_email(email)
    assert user is not None
    return str(user.id)


def _counted(directory: AgentDirectory) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    directory.on_lookup = lambda direction, outcome: outcomes.update([f"{direction}:{outcome}"])
    return outcomes


def _update(ticket_id: str, owner: str | None, *, key: str = "cmd-1", **more: Any) -> SyncCommand:
    case = Case(
        status=more.pop("status", CaseStatus.OPEN),
        assignee=Actor(kind=ActorKind.AGENT, email=owner) if owner else None,
    )
    return SyncCommand(
        command_id=key,
        link_id="lnk_" + "c" * 32,
        target=EntityRef(
            platform=Platform.ZENDESK,
            connector_id="zd",
            entity_type=EntityType.CASE,
            entity_id=ticket_id,
        ),
        action=CommandAction.UPDATE,
        idempotency_key=key,
        caused_by_event_id="evt-1",
        data=case,
        changed_fields=more.pop("changed", ["assignee"]),
        issued_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


async def test_the_directory_knows_agents_by_id_and_email(
    zendesk: ZendeskEnv, sink: ZendeskSink
) -> None:
    agents = sink.agents
    assert agents is not None
    outcomes = _counted(agents)
    ada = _user_id(zendesk, ADA)
    assert await agents.agent_for(ADA.upper()) == ada
    assert await agents.email_of(ada) == ADA  # learned from the email's answer: no call
    assert await agents.agent_for("nobody@sandbox.example") is None
    customer = (await zendesk.create_ticket(requester={"name": "Maria", "email": "m@x.example"}))[
        "requester_id"
    ]
    assert await agents.email_of(str(customer)) is None  # an end user owns nothing
    assert await agents.email_of("381999999999") is None  # no such user (404)
    assert outcomes == Counter(
        {
            "email_to_id:called": 2,
            "id_to_email:cached": 1,
            "id_to_email:called": 2,
        }
    )


async def test_the_sink_assigns_reassigns_and_unassigns(
    zendesk: ZendeskEnv, sink: ZendeskSink
) -> None:
    ticket_id = str((await zendesk.create_ticket())["id"])
    ticket = zendesk.sandbox.core.state.tickets[int(ticket_id)]
    assigned = await sink.execute(_update(ticket_id, ADA))
    assert str(ticket.assignee_id) == _user_id(zendesk, ADA)
    assert assigned.fingerprints == [fingerprint("zendesk", ticket_id, "assignee", ADA)]
    assert assigned.created_ids == {CREATED_OWNER: _user_id(zendesk, ADA)}
    assert assigned.api_calls == 2  # the directory's search, then the update
    ben = SHARED[1].email
    again = await sink.execute(_update(ticket_id, ben, key="cmd-2"))
    assert str(ticket.assignee_id) == _user_id(zendesk, ben)
    assert again.api_calls == 2
    cached = await sink.execute(_update(ticket_id, ADA, key="cmd-3"))
    assert (cached.api_calls, str(ticket.assignee_id)) == (1, _user_id(zendesk, ADA))
    unassigned = await sink.execute(_update(ticket_id, None, key="cmd-4"))
    assert ticket.assignee_id is None
    assert unassigned.fingerprints == [fingerprint("zendesk", ticket_id, "assignee", "")]
    assert unassigned.api_calls == 1


async def test_an_email_no_agent_has_is_left_out_and_the_rest_written(
    zendesk: ZendeskEnv, sink: ZendeskSink
) -> None:
    ticket_id = str((await zendesk.create_ticket())["id"])
    ticket = zendesk.sandbox.core.state.tickets[int(ticket_id)]
    stranger = "stranger@elsewhere.example"
    result = await sink.execute(
        _update(ticket_id, stranger, status=CaseStatus.PENDING, changed=["status", "assignee"])
    )
    assert (ticket.status, ticket.assignee_id) == ("pending", None)
    assert result.skipped == ["assignee"]
    assert result.fingerprints == [fingerprint("zendesk", ticket_id, "status", "pending")]
    assert f"no Zendesk agent has the email {stranger}" in result.detail
    assert "create the agent in Zendesk" in result.detail
    only = await sink.execute(_update(ticket_id, stranger, key="cmd-2"))
    assert (only.written, only.skipped, only.api_calls) == (False, ["assignee"], 0)


async def test_a_seeded_agent_only_zendesk_knows(zendesk: ZendeskEnv, sink: ZendeskSink) -> None:
    """The sandbox's Zendesk-only agent (the demo's "no match elsewhere") is an agent here."""
    assert sink.agents is not None
    assert await sink.agents.agent_for(CLEO) == _user_id(zendesk, CLEO)
