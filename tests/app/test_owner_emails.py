"""The sync agent's owner emails (``app.agents.owners``): the link's memory first, then the
platform's agent directory; a failed or slow lookup leaves the owner unresolved (the planner
then decides again later), never stalls the partition; a failure quiets the connector's
lookups for a while, and a batch's lookups share one budget."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import ClassVar

import pytest

from app.agents.owners import MAX_QUIET_S, OwnerEmails
from connectors.base.directory import Agent, AgentDirectory, AgentLookup
from schemas.errors import RateLimitedError, RetriableAPIError
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
        #: agent id → seconds its lookup takes, on ``clock`` when given, else really
        self.takes: dict[str, float] = {}
        self.clock: Clock | None = None

    async def by_id(self, agent_id: str) -> list[Agent]:
        self.calls += 1
        if self.slow is not None:
            await self.slow.wait()
        takes = self.takes.get(agent_id, 0.0)
        if self.clock is not None:
            self.clock.now += takes
        elif takes:
            await asyncio.sleep(takes)
        if self.error is not None:
            raise self.error
        return [Agent(id=agent_id, email=f"{agent_id.removeprefix('zd-').title()}@Example.com")]

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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _owners(
    desk: Desk,
    asked: Counter[str],
    budget: float = 10.0,
    directory: AgentDirectory | None = None,
    clock: Clock | None = None,
) -> OwnerEmails:
    directory = directory or AgentDirectory(desk)

    def directory_for(platform: str, connector_id: str) -> AgentDirectory | None:
        asked[f"{platform}/{connector_id}"] += 1
        return directory if platform == "zendesk" else None

    if clock is None:
        return OwnerEmails(three_way_config(), directory_for, budget=budget)
    return OwnerEmails(three_way_config(), directory_for, budget=budget, clock=clock)


def _counting(desk: Desk, lookups: Counter[str], clock: Clock | None = None) -> AgentDirectory:
    """A directory whose questions are counted by outcome (``cached``, ``called``, ...)."""
    directory = AgentDirectory(desk, clock=clock) if clock is not None else AgentDirectory(desk)
    directory.on_lookup = lambda _direction, outcome: lookups.update([outcome])
    return directory


async def test_the_directory_answers_once_and_the_links_memory_after(desk: Desk) -> None:
    world, asked = World(), Counter[str]()
    owners = _owners(desk, asked)
    filled = await owners.batch().fill(_report(world, "zd-ada"), {})
    assert _owner(filled) == Actor(kind=ActorKind.AGENT, id="zd-ada", email="ada@example.com")
    again = await owners.batch().fill(_report(world, "zd-ada"), {})  # the worker's cache
    assert _owner(again) == _owner(filled)
    agents = {"zendesk:zd-ben": "ben@example.com"}
    remembered = await owners.batch().fill(_report(world, "zd-ben"), agents)  # the link's memory
    assert _owner(remembered) == Actor(kind=ActorKind.AGENT, id="zd-ben", email="ben@example.com")
    assert (desk.calls, asked) == (1, Counter({"zendesk/zd": 2}))


async def test_nothing_to_resolve_asks_nobody(desk: Desk) -> None:
    world, asked = World(), Counter[str]()
    owners = _owners(desk, asked)
    nobody = world.ticket(status=CaseStatus.SOLVED, changed=["status"])
    resolved = world.ticket(assignee=Actor(kind=ActorKind.AGENT, id="zd-7", email="x@y.example"))
    for event in (nobody, resolved, world.conversation()):
        assert await owners.batch().fill(event, {}) is event
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
    owners = _owners(desk, Counter(), budget=0.05, directory=directory)
    report = _report(World(), "zd-ada")
    assert await owners.batch().fill(report, {}) == report
    assert desk.calls == 1
    if desk.slow is not None:
        # The lookup the fill gave up on goes on: its answer, once it comes, is learned for
        # the next asker (who joins it here rather than asking again). Awaited, so that the
        # test does not end with it pending.
        desk.slow.set()
        assert await directory.email_of("zd-ada") == "ada@example.com"
        assert desk.calls == 1


async def test_a_failed_lookup_quiets_the_connector_and_the_cache_still_answers(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    world, clock, lookups = World(), Clock(), Counter[str]()
    directory = _counting(desk, lookups)
    owners = _owners(desk, Counter(), directory=directory, clock=clock)
    assert _owner(await owners.batch().fill(_report(world, "zd-ada"), {})) is not None  # cached now
    desk.error = RetriableAPIError("zendesk answered 503; will retry", status=503)
    with caplog.at_level(logging.INFO, logger="app.agents.owners"):
        reports = [_report(world, f"zd-{n}") for n in range(20)]
        for report in reports:
            assert await owners.batch().fill(report, {}) == report  # unresolved
        ada = await owners.batch().fill(_report(world, "zd-ada"), {})
        assert _owner(ada) == Actor(kind=ActorKind.AGENT, id="zd-ada", email="ada@example.com")
        # One call failed; the 19 owners after it were not asked of the platform.
        assert desk.calls == 2
        assert lookups == Counter(called=1, failed=1, skipped=19, cached=1)
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1
        assert "quiet for 30 s" in warned[0].getMessage()
        clock.now += 29.0
        assert await owners.batch().fill(reports[0], {}) == reports[0]
        assert desk.calls == 2  # still quiet
        clock.now += 2.0  # past the quiet
        # An owner the cache holds says nothing of the platform, still down.
        assert _owner(await owners.batch().fill(_report(world, "zd-ada"), {})) is not None
        assert not any("answer again" in r.getMessage() for r in caplog.records)
        desk.error = None  # the next lookup asks, and the platform answers
        filled = await owners.batch().fill(reports[0], {})
        assert _owner(filled) == Actor(kind=ActorKind.AGENT, id="zd-0", email="0@example.com")
        assert desk.calls == 3
    assert "owner lookups answer again" in caplog.records[-1].getMessage()


async def test_a_rate_limit_quiets_the_lookups_for_its_retry_after(desk: Desk) -> None:
    world, clock = World(), Clock()
    owners = _owners(desk, Counter(), clock=clock)
    desk.error = RateLimitedError("zendesk answered 429; retry in 120 s", retry_after=120.0)
    await owners.batch().fill(_report(world, "zd-1"), {})
    clock.now += 100.0  # past the usual quiet, within the platform's retry_after
    await owners.batch().fill(_report(world, "zd-2"), {})
    assert desk.calls == 1
    clock.now += 21.0
    desk.error = None
    assert _owner(await owners.batch().fill(_report(world, "zd-2"), {})) == Actor(
        kind=ActorKind.AGENT, id="zd-2", email="2@example.com"
    )
    assert desk.calls == 2


async def test_a_batch_past_its_budget_asks_only_the_cache(desk: Desk) -> None:
    world, clock, lookups = World(), Clock(), Counter[str]()
    owners = _owners(desk, Counter(), directory=_counting(desk, lookups), clock=clock)
    await owners.batch().fill(_report(world, "zd-ada"), {})
    desk.clock, desk.takes = clock, {"zd-1": 6.0, "zd-2": 6.0}  # answered, slowly
    batch = owners.batch()  # its lookups share 10 s
    assert _owner(await batch.fill(_report(world, "zd-1"), {})) is not None
    assert _owner(await batch.fill(_report(world, "zd-2"), {})) is not None  # 4 s left
    clock.now += 60.0  # time spent planning does not count
    late = _report(world, "zd-ben")
    assert await batch.fill(late, {}) == late  # the budget is spent: the cache lacks ben
    ada = await batch.fill(_report(world, "zd-ada"), {})
    assert _owner(ada) == Actor(kind=ActorKind.AGENT, id="zd-ada", email="ada@example.com")
    assert desk.calls == 3
    assert lookups == Counter(called=3, skipped=1, cached=1)
    # Not a failure of the platform: the next batch asks it.
    ben = await owners.batch().fill(late, {})
    assert _owner(ben) == Actor(kind=ActorKind.AGENT, id="zd-ben", email="ben@example.com")
    assert desk.calls == 4


async def test_a_slow_platform_is_quieted_only_when_it_had_half_the_budget(desk: Desk) -> None:
    world, clock = World(), Clock()
    # zd-1 is answered in 0.15 s of the batch's 0.2 (on the test's clock, so that a busy
    # machine cannot make it late); the hold below applies to the others only.
    desk.clock, desk.takes = clock, {"zd-1": 0.15}
    directory = AgentDirectory(desk)
    owners = _owners(desk, Counter(), budget=0.2, directory=directory, clock=clock)
    batch = owners.batch()
    assert _owner(await batch.fill(_report(world, "zd-1"), {})) is not None
    desk.slow = asyncio.Event()
    try:
        await batch.fill(_report(world, "zd-2"), {})  # 0.05 s left: says nothing of it
        await owners.batch().fill(_report(world, "zd-3"), {})  # asked, and given 0.2 s
        assert desk.calls == 3
        await owners.batch().fill(_report(world, "zd-4"), {})  # quiet now
        assert desk.calls == 3
    finally:
        desk.slow.set()
    assert await directory.email_of("zd-2") == "2@example.com"  # the calls end, unawaited
    assert await directory.email_of("zd-3") == "3@example.com"


async def test_a_report_left_unresolved_by_the_quiet_is_decided_again_once_it_ends(
    desk: Desk,
) -> None:
    world, clock = World(), Clock()
    owners = _owners(desk, Counter(), clock=clock)
    report = _report(world, "zd-1")
    assert owners.quiet_left(report) == 0.0
    desk.error = RateLimitedError("zendesk answered 429; retry in 90 s", retry_after=90.0)
    await owners.batch().fill(report, {})
    clock.now += 10.0
    assert owners.quiet_left(report) == 80.0  # the 429's wait, not the 30 s quiet
    resolved = world.ticket(assignee=Actor(kind=ActorKind.AGENT, id="zd-7", email="x@y.example"))
    assert owners.quiet_left(resolved) == 0.0  # nothing to ask: decided again at once
    # Not retried for its owner: whatever else it waits for is not held back by the quiet.
    other = world.ticket(assignee=Actor(kind=ActorKind.AGENT, id="zd-1"), changed=["status"])
    assert owners.quiet_left(other) == 0.0
    desk.error = RateLimitedError("zendesk answered 429; retry in 1 h", retry_after=3600.0)
    clock.now += 80.0
    await owners.batch().fill(report, {})
    assert owners.quiet_left(report) == MAX_QUIET_S  # a commit is held no longer
