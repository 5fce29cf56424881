"""Owners in Zendesk, against the sandbox: the agent directory (users with the agent or admin
role, by id and by email), the sink writing a ticket's ``assignee_id`` for the owner a
command names by email, leaving out an email no agent has, and the sync stage's lookups
(``app.agents.owners``) while the platform is down or hangs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.agents.owners import QUIET_S, OwnerEmails
from connectors.base.commands import CREATED_OWNER
from connectors.base.directory import AgentDirectory
from connectors.base.fingerprints import fingerprint
from connectors.zendesk.sink import ZendeskSink
from sandboxes.base.clock import ManualClock
from sandboxes.base.staff import SHARED, ZENDESK_ONLY
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    CommandAction,
    EntityRef,
    EntityType,
    Envelope,
    Platform,
    SyncCommand,
)
from tests.sandboxes.zendesk.conftest import ZendeskEnv, serve
from tests.streams.builders import World
from tests.streams.three_way import three_way_config

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


class _Clock:
    """The sync stage's clock, moved by the test (the quiet window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


async def test_an_assignment_run_again_after_a_crash_writes_nothing(
    zendesk: ZendeskEnv, sink: ZendeskSink
) -> None:
    # Run again after a kill -9 between the answer and the commit (attempt 2): the ticket is
    # the agent's already, so no PUT; the owner's fingerprint and id as the first answer gave.
    ticket_id = str((await zendesk.create_ticket())["id"])
    ticket = zendesk.sandbox.core.state.tickets[int(ticket_id)]
    command = _update(ticket_id, ADA, status=CaseStatus.PENDING, changed=["status", "assignee"])
    first = await sink.execute(command)
    audits = len(ticket.audit_ids)
    again = await sink.execute(command.model_copy(update={"attempt": 2}))
    assert first.written
    assert not again.written
    assert len(ticket.audit_ids) == audits
    assert sorted(again.fingerprints) == sorted(first.fingerprints)
    assert again.created_ids == first.created_ids == {CREATED_OWNER: _user_id(zendesk, ADA)}
    assert again.api_calls == 1  # the read (the directory knows Ada now)
    ticket.assignee_id = None  # a person unassigned it since: written again
    assert (await sink.execute(command.model_copy(update={"attempt": 2}))).written
    assert str(ticket.assignee_id) == _user_id(zendesk, ADA)


def _reports(world: World, agent_ids: list[str]) -> list[Envelope]:
    """Ticket reports naming their owner by id only, as the normaliser reports them."""
    return [
        world.ticket(assignee=Actor(kind=ActorKind.AGENT, id=agent_id), changed=["assignee"])
        for agent_id in agent_ids
    ]


async def _faulted(env: ZendeskEnv) -> dict[str, Any]:
    """The sandbox's fault counters (``GET /_sandbox/state``): requests it failed or held."""
    faults: dict[str, Any] = (await env.http.get("/_sandbox/state")).json()["faults"]
    return faults


def _emails(filled: list[Envelope]) -> list[str | None]:
    owners = [event.data.assignee for event in filled if isinstance(event.data, Case)]
    return [owner.email if owner is not None else None for owner in owners]


async def test_a_directory_outage_costs_the_sync_stage_one_call_per_quiet_window(
    zendesk: ZendeskEnv, sink: ZendeskSink
) -> None:
    """The sync stage's owner lookups (``app.agents.owners``) against the sandbox answering
    503: twenty reports naming twenty owners the cache lacks make one call, not twenty; the
    owner the cache holds is still resolved; once the quiet ends the platform is asked
    again."""
    directory = sink.agents
    assert directory is not None
    outcomes, clock = _counted(directory), _Clock()
    owners = OwnerEmails(three_way_config(), lambda *_: directory, clock=clock)
    world = World()
    ada = _user_id(zendesk, ADA)
    assert _emails([await owners.batch().fill(_reports(world, [ada])[0], {})]) == [ADA]
    outage = {"outage_windows": [[0, 3600]]}
    assert (await zendesk.http.put("/_sandbox/faults", json=outage)).status_code == 200
    strangers = [str(381_000_000_000 + n) for n in range(20)]
    reports = _reports(world, [*strangers, ada])
    filled = [await owners.batch().fill(report, {}) for report in reports]
    assert _emails(filled) == [None] * 20 + [ADA]
    assert (await _faulted(zendesk))["outages"] == 1
    assert outcomes == Counter(
        {
            "id_to_email:called": 1,
            "id_to_email:failed": 1,
            "id_to_email:skipped": 19,
            "id_to_email:cached": 1,
        }
    )
    assert (await zendesk.http.put("/_sandbox/faults", json={})).status_code == 200
    clock.now += QUIET_S  # the quiet is over: the next report's owner is asked for
    cleo = _user_id(zendesk, CLEO)
    assert _emails([await owners.batch().fill(_reports(world, [cleo])[0], {})]) == [CLEO]
    assert outcomes["id_to_email:called"] == 2


class _HeldClock(ManualClock):
    """The sandbox's clock, whose sleeps (an injected latency) last until ``release``: a
    platform that takes the request and does not answer."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.released.wait()


async def test_a_directory_that_hangs_holds_a_batch_once_not_per_report() -> None:
    """The sandbox holding every answer: the first lookup waits the budget out and quiets
    the connector; the batch's nineteen other reports are not sent to the platform, and the
    held call's answer, once it comes, is learned."""
    clock = _HeldClock()
    async with serve(clock) as zendesk, httpx.AsyncClient() as http:
        sink = ZendeskSink(connector_id="zd", settings=zendesk.connector_settings(), http=http)
        directory = sink.agents
        assert directory is not None
        outcomes = _counted(directory)
        owners = OwnerEmails(three_way_config(), lambda *_: directory, budget=0.2)
        hang = {"latency_ms": 60_000}
        assert (await zendesk.http.put("/_sandbox/faults", json=hang)).status_code == 200
        ids = [_user_id(zendesk, ADA), *(str(381_000_000_000 + n) for n in range(19))]
        batch = owners.batch()
        try:
            filled = [await batch.fill(report, {}) for report in _reports(World(), ids)]
            assert _emails(filled) == [None] * 20
            faulted = (await _faulted(zendesk))["delayed"]
            assert (faulted, outcomes["id_to_email:skipped"]) == (1, 19)
        finally:
            clock.released.set()  # the held call answers now
        assert await directory.email_of(ids[0]) == ADA
        assert outcomes["id_to_email:called"] == 1
        await sink.aclose()
