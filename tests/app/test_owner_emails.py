"""The sync agent's owner emails (``app.agents.owners``): the link's memory first, then the
platform's agent directory; a failed or slow lookup leaves the owner unresolved (the planner
then decides again later), never stalls the partition."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import pytest

from app.agents.owners import OwnerEmails
from connectors.base.directory import Agent, AgentDirectory, AgentLookup
from schemas.errors import RetriableAPIError
from schemas.models import Actor, ActorKind, Case, CaseStatus, Envelope
from tests.streams.builders import World
from tests.streams.three_way import three_way_config


class Desk(AgentLookup):
    platform: ClassVar[str] = "zendesk"

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None
        #: set: a lookup waits until it is cleared (a slow platform)
        self.slow: asyncio.Event | None = None

    async def by_id(self, agent_id: str) -> list[Agent]:
        self.calls += 1
        if self.slow is not None:
            await self.slow.wait()
        if self.error is not None:
            raise self.error
        return [Agent(id="zd-ada", email="Ada@Example.com")]

    async def by_email(self, email: str) -> list[Agent]:
        raise AssertionError("the sync stage reads ids, not emails")


def _report(world: World, agent_id: str) -> Envelope:
    owner = Actor(kind=ActorKind.AGENT, id=agent_id)
    return world.ticket(assignee=owner, changed=["assignee"])


def _owner(event: Envelope) -> Actor | None:
    assert isinstance(event.data, Case)
    return event.data.assignee


@pytest.fixture
def desk() -> Desk:
    return Desk()


def _owners(
    desk: Desk, asked: Counter[str], timeout: float = 10.0, directory: AgentDirectory | None = None
) -> OwnerEmails:
    directory = directory or AgentDirectory(desk)

    def directory_for(platform: str, connector_id: str) -> AgentDirectory | None:
        asked[f"{platform}/{connector_id}"] += 1
        return directory if platform == "zendesk" else None

    return OwnerEmails(three_way_config(), directory_for, timeout=timeout)


async def test_the_directory_answers_once_and_the_links_memory_after(desk: Desk) -> None:
    world, asked = World(), Counter[str]()
    owners = _owners(desk, asked)
    filled = await owners.fill(_report(world, "zd-ada"), {})
    assert _owner(filled) == Actor(kind=ActorKind.AGENT, id="zd-ada", email="ada@example.com")
    again = await owners.fill(_report(world, "zd-ada"), {})  # the worker's cache
    assert _owner(again) == _owner(filled)
    agents = {"zendesk:zd-ben": "ben@example.com"}
    remembered = await owners.fill(_report(world, "zd-ben"), agents)  # the link's memory
    assert _owner(remembered) == Actor(kind=ActorKind.AGENT, id="zd-ben", email="ben@example.com")
    assert (desk.calls, asked) == (1, Counter({"zendesk/zd": 2}))


async def test_nothing_to_resolve_asks_nobody(desk: Desk) -> None:
    world, asked = World(), Counter[str]()
    owners = _owners(desk, asked)
    nobody = world.ticket(status=CaseStatus.SOLVED, changed=["status"])
    resolved = world.ticket(assignee=Actor(kind=ActorKind.AGENT, id="zd-7", email="x@y.example"))
    for event in (nobody, resolved, world.conversation()):
        assert await owners.fill(event, {}) is event
    assert (desk.calls, asked) == (0, Counter())


@pytest.mark.parametrize("failure", ["error", "timeout"])
async def test_a_failed_or_slow_lookup_leaves_the_owner_unresolved(
    desk: Desk, failure: str
) -> None:
    if failure == "error":
        desk.error = RetriableAPIError("zendesk answered 503; will retry", status=503)
    else:
        desk.slow = asyncio.Event()
    directory = AgentDirectory(desk)
    owners = _owners(desk, Counter(), timeout=0.05, directory=directory)
    report = _report(World(), "zd-ada")
    assert await owners.fill(report, {}) == report
    assert desk.calls == 1
    if desk.slow is not None:
        # The lookup the fill gave up on goes on: its answer, once it comes, is learned for
        # the next asker (who joins it here rather than asking again). Awaited, so that the
        # test does not end with it pending.
        desk.slow.set()
        assert await directory.email_of("zd-ada") == "ada@example.com"
        assert desk.calls == 1
