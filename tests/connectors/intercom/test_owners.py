"""Owners in Intercom, against the sandbox: the agent directory (``GET /admins``, one call for
the whole workspace, Deskstream's bot never an owner) and the sink assigning a conversation
(an ``assignment`` part by the bot) to the admin with the command's email, or to nobody; the
assignment's notification names the owner by id and is recognised as our own."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from connectors.base.commands import CREATED_OWNER
from connectors.base.fingerprints import fingerprint
from sandboxes.base import ManualClock
from schemas.models import Actor, ActorKind, Case, CaseStatus, EntityType, SyncCommand
from tests.connectors.intercom.sink_env import ADMINS, AGENT, BOT, Connector, connector_env

ADA = ADMINS[1].email


@pytest.fixture
async def connector(clock: ManualClock) -> AsyncIterator[Connector]:
    async with connector_env(clock) as env:
        yield env


def _assign(connector: Connector, cid: str, email: str | None) -> SyncCommand:
    owner = Actor(kind=ActorKind.AGENT, email=email) if email else None
    case = Case(status=CaseStatus.OPEN, assignee=owner)
    return connector.command(EntityType.CASE, "update", case, entity_id=cid, changed=["assignee"])


async def test_one_admin_list_answers_every_question(connector: Connector) -> None:
    agents = connector.sink.agents
    assert agents is not None
    outcomes: Counter[str] = Counter()
    agents.on_lookup = lambda direction, outcome: outcomes.update([f"{direction}:{outcome}"])
    assert await agents.agent_for(ADA) == AGENT
    assert await agents.email_of(AGENT) == ADA
    assert await agents.email_of(ADMINS[0].id) == ADMINS[0].email
    assert await agents.email_of(BOT) is None  # Deskstream's own bot admin owns nothing
    assert await agents.agent_for("nobody@sandbox.example") is None
    # The first question listed the admins; every other answer came from that list, except
    # the two misses, which ask again (a new admin may have joined).
    assert outcomes == Counter(
        {"email_to_id:called": 2, "id_to_email:cached": 2, "id_to_email:called": 1}
    )


async def test_assign_and_unassign_with_their_echo(connector: Connector) -> None:
    _, cid = await connector.conversation()
    assigned = await connector.sink.execute(_assign(connector, cid, ADA))
    conversation = await connector.get(f"/conversations/{cid}")
    assert str(conversation["admin_assignee_id"]) == AGENT
    assert assigned.fingerprints == [fingerprint("intercom", cid, "assignee", ADA)]
    assert assigned.created_ids[CREATED_OWNER] == AGENT
    assert assigned.api_calls == 2  # GET /admins (cold cache), POST parts
    (echo,) = [e for e in await connector.events() if isinstance(e.data, Case)]
    assert echo.source.event_type == "conversation.admin.assigned"
    assert echo.source.actor.kind is ActorKind.INTEGRATION  # our bot assigned it
    assert echo.changed_fields == ["assignee"]
    assert isinstance(echo.data, Case)
    assert echo.data.assignee is not None
    assert echo.data.assignee.id == AGENT

    unassigned = await connector.sink.execute(_assign(connector, cid, None))
    assert (await connector.get(f"/conversations/{cid}"))["admin_assignee_id"] is None
    assert unassigned.fingerprints == [fingerprint("intercom", cid, "assignee", "")]
    assert unassigned.api_calls == 1
    (echo,) = [e for e in await connector.events() if isinstance(e.data, Case)]
    assert isinstance(echo.data, Case)
    assert echo.data.assignee is None


async def test_an_email_no_admin_has_is_left_out(connector: Connector) -> None:
    _, cid = await connector.conversation()
    result = await connector.sink.execute(_assign(connector, cid, "stranger@elsewhere.example"))
    assert (result.written, result.skipped) == (False, ["assignee"])
    assert "no Intercom agent has the email stranger@elsewhere.example" in result.detail
    assert (await connector.get(f"/conversations/{cid}"))["admin_assignee_id"] is None
    assert await connector.events() == []
