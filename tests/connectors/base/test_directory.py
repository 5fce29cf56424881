"""The agent directory's cache: answers kept for their TTL (misses for a shorter one), one
call shared by concurrent askers, every answer learned both ways, failures never kept, and
every question counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import pytest

from connectors.base.directory import Agent, AgentDirectory, AgentLookup, owner_write
from schemas.errors import RetriableAPIError
from schemas.models import Actor, ActorKind

ADA = Agent(id="7", email="Ada@Example.com", name="Ada")
BEN = Agent(id="8", email="ben@example.com")


class Roster(AgentLookup):
    """A platform whose every call answers the whole roster (as Intercom's admin list does),
    counting its calls; ``fail`` makes the next call fail, ``gate`` holds calls."""

    platform: ClassVar[str] = "fake"

    def __init__(self, *agents: Agent) -> None:
        self.agents = list(agents)
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def _answer(self) -> list[Agent]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail = False
            raise RetriableAPIError("fake platform answered 503; will retry", status=503)
        return list(self.agents)

    async def by_id(self, agent_id: str) -> list[Agent]:
        return await self._answer()

    async def by_email(self, email: str) -> list[Agent]:
        return await self._answer()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _directory(roster: Roster, clock: Clock, outcomes: Counter[str]) -> AgentDirectory:
    return AgentDirectory(
        roster,
        ttl=3600,
        miss_ttl=60,
        clock=clock,
        on_lookup=lambda direction, outcome: outcomes.update([f"{direction}:{outcome}"]),
    )


async def test_answers_are_kept_for_their_ttl_and_learned_both_ways() -> None:
    roster, clock, outcomes = Roster(ADA, BEN), Clock(), Counter[str]()
    directory = _directory(roster, clock, outcomes)
    assert await directory.agent_for(" ADA@example.COM ") == "7"
    assert await directory.email_of("7") == "ada@example.com"  # lower case, no call
    assert await directory.email_of("8") == "ben@example.com"  # the same call taught it
    assert roster.calls == 1
    clock.now = 3601
    assert await directory.email_of("7") == "ada@example.com"
    assert roster.calls == 2
    assert outcomes == Counter(
        {"email_to_id:called": 1, "id_to_email:cached": 2, "id_to_email:called": 1}
    )


async def test_a_miss_is_kept_for_the_shorter_ttl() -> None:
    roster, clock, outcomes = Roster(ADA), Clock(), Counter[str]()
    directory = _directory(roster, clock, outcomes)
    assert await directory.agent_for("new@example.com") is None
    assert await directory.agent_for("new@example.com") is None
    assert roster.calls == 1
    roster.agents.append(Agent(id="9", email="new@example.com"))  # the agent is created
    clock.now = 61
    assert await directory.agent_for("new@example.com") == "9"
    assert roster.calls == 2


async def test_concurrent_askers_share_one_call_and_failures_are_not_kept() -> None:
    roster, clock, outcomes = Roster(ADA), Clock(), Counter[str]()
    directory = _directory(roster, clock, outcomes)
    roster.gate = asyncio.Event()
    asks = [asyncio.ensure_future(directory.email_of("7")) for _ in range(5)]
    await asyncio.sleep(0)
    roster.gate.set()
    assert await asyncio.gather(*asks) == ["ada@example.com"] * 5
    assert roster.calls == 1
    roster.gate = None
    roster.fail = True
    with pytest.raises(RetriableAPIError):
        await directory.agent_for("ben@example.com")
    assert await directory.agent_for("ben@example.com") is None  # asked again, not kept
    assert outcomes["email_to_id:failed"] == 1
    assert roster.calls == 3
    directory.forget(agent_id="7")
    assert await directory.email_of("7") == "ada@example.com"
    assert roster.calls == 4


async def test_owner_write_names_the_agent_nobody_or_why_not() -> None:
    directory = _directory(Roster(ADA), Clock(), Counter())
    ada = await owner_write(
        directory, Actor(kind=ActorKind.AGENT, email="ADA@example.com"), platform="Fake"
    )
    assert (ada.agent_id, ada.email, ada.skipped) == ("7", "ada@example.com", None)
    nobody = await owner_write(directory, None, platform="Fake")
    assert (nobody.agent_id, nobody.email, nobody.skipped) == (None, "", None)
    stranger = await owner_write(
        directory, Actor(kind=ActorKind.AGENT, email="x@example.com"), platform="Fake"
    )
    assert stranger.agent_id is None
    assert stranger.skipped is not None
    assert "no Fake agent has the email x@example.com" in stranger.skipped


async def test_an_asker_who_gives_up_does_not_cancel_the_call_for_the_others() -> None:
    roster, clock, outcomes = Roster(ADA), Clock(), Counter[str]()
    directory = _directory(roster, clock, outcomes)
    roster.gate = asyncio.Event()
    with pytest.raises(TimeoutError):  # the sync stage's bounded wait
        await asyncio.wait_for(directory.email_of("7"), 0.01)
    patient = asyncio.ensure_future(directory.email_of("7"))  # shares the call in flight
    await asyncio.sleep(0)
    roster.gate.set()
    assert await patient == "ada@example.com"
    assert await directory.email_of("7") == "ada@example.com"  # learned: no second call
    assert roster.calls == 1
