"""The daily allowance: ``Sforce-Limit-Info`` read after every answer; below the reserve,
calls pause (on the sandbox's clock) until the rolling 24 hours free some, or until a
``/limits`` probe finds room; a 403 for a spent allowance pauses too. Nothing fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import DailyLimit, parse_limit_info
from tests.connectors.salesforce.conftest import ConnectorFactory
from tests.sandboxes.salesforce.conftest import SalesforceEnv, StartSandbox


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=18/5000", (18, 5000)),
        ("api-usage=10018/100000; api-bursts=1/750", (10018, 100000)),
        ("per-app-api-usage=17/250(appName=sample-app); api-usage=25/5000", (25, 5000)),
        ("per-app-api-usage=17/250(appName=sample-app)", None),
        ("api-usage=3/0", None),
        ("", None),
        (None, None),
    ],
    ids=["plain", "with-bursts", "per-app-first", "per-app-only", "zero-limit", "empty", "absent"],
)
def test_limit_info_header(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_limit_info(header) == expected


@dataclass
class Paused:
    env: SalesforceEnv
    client: SalesforceClient
    daily: DailyLimit
    start: datetime

    def created(self, case_id: str) -> datetime:
        created = self.env.sandbox.org.store.records["Case"][case_id]["CreatedDate"]
        assert isinstance(created, datetime)
        return created


@pytest.fixture
def org(start_sandbox: StartSandbox, connector_for: ConnectorFactory) -> OrgFactory:
    """``async with org(limit, reserve) as o``: a sandbox with that daily allowance and a
    client keeping that reserve, probing hourly, both on the sandbox's clock."""

    @asynccontextmanager
    async def start(limit: int, reserve: int) -> AsyncIterator[Paused]:
        async with start_sandbox(daily_api_limit=limit, session_timeout_s=48 * 3600) as env:
            daily = DailyLimit(
                reserve=reserve,
                probe_every_s=3600.0,
                now=env.clock.monotonic,
                sleep=env.clock.sleep,
            )
            async with connector_for(env).client(daily=daily) as client:
                yield Paused(env, client, daily, env.clock.now())

    return start


OrgFactory = Callable[[int, int], AbstractAsyncContextManager[Paused]]


async def test_calls_pause_under_the_reserve_until_the_day_rolls_over(org: OrgFactory) -> None:
    async with org(10, 3) as o:
        early = [await o.client.create("Case", {"Subject": f"early {i}"}) for i in range(7)]
        assert o.daily.remaining == 3
        late = await o.client.create("Case", {"Subject": "late"})

    assert o.daily.pauses == 1
    assert all(o.created(case_id) == o.start for case_id in early)
    # Hourly probes found no room; the calls of the first hour left the window at 24 h.
    assert o.created(late) == o.start + timedelta(hours=24)
    assert len(o.env.sandbox.org.store.records["Case"]) == 8


async def test_a_probe_that_finds_room_ends_the_pause_early(org: OrgFactory) -> None:
    async with org(10, 3) as o:
        for i in range(7):
            await o.client.create("Case", {"Subject": f"early {i}"})
        o.env.sandbox.org.usage.limit = 1000  # the org bought more calls
        late = await o.client.create("Case", {"Subject": "late"})

    assert o.daily.pauses == 1
    assert o.created(late) == o.start + timedelta(hours=1)


async def test_an_allowance_spent_by_others_pauses_instead_of_failing(org: OrgFactory) -> None:
    async with org(5, 0) as o:
        await o.client.create("Case", {"Subject": "ours"})
        for i in range(4):  # another integration spends the rest
            await o.env.create("Case", {"Subject": f"theirs {i}"})
        assert o.daily.has_room()  # our view is stale: the call goes and gets a 403
        late = await o.client.create("Case", {"Subject": "after the refusal"})

    assert o.daily.pauses == 1
    assert o.created(late) == o.start + timedelta(hours=24)
