"""Two workers' sink runners against one Zendesk account: each spends only its share of the
account's rate limit (the partitions of the commands topic it owns), and the share follows a
rebalance. Zendesk's sink once kept its budget on its client, out of the runner's reach: every
worker spent the whole account limit."""

from __future__ import annotations

from faust.types import TP
from prometheus_client import CollectorRegistry

from app.agents.sinks import PartitionShare, SinkRunner
from app.metrics import Metrics
from app.settings import load_settings
from app.webhook_watch import WebhookWatch
from sandboxes.base import ManualClock
from schemas.models import WriteOutcome
from tests.connectors.zendesk.test_sink import CUSTOMER, message, upsert
from tests.sandboxes.zendesk.conftest import serve

LIMIT = 600  # requests per minute, the account's


async def test_each_worker_spends_its_share_of_one_zendesk_limit() -> None:
    async with serve(ManualClock(), rate_limit_per_minute=LIMIT) as env:
        connector = env.connector_settings().model_copy(update={"rate_limit_per_minute": LIMIT})
        settings = load_settings(connectors={"zd": connector})
        workers = [SinkRunner(settings, "zendesk", Metrics(CollectorRegistry())) for _ in "ab"]
        shares = [(3, 8), (5, 8)]  # 8 partitions: one worker owns 3, the other 5
        for n, (runner, share) in enumerate(zip(workers, shares, strict=True)):
            thread = [message(CUSTOMER, f"Order {n} never arrived", minutes=n)]
            command = upsert(thread, link=f"lnk_{n:032x}", key=f"cmd-{n}")
            write, _, letter = await runner.run(command, share=share)
            assert letter is None
            assert write.outcome is WriteOutcome.WRITTEN
        budgets = [runner.sink("zd").budget for runner in workers]
        assert [b.share for b in budgets] == [3 / 8, 5 / 8]
        assert sum(b.share for b in budgets) == 1.0  # together: the account limit, once

        # A rebalance: the first worker's partitions move to the second.
        later = upsert(
            [message(CUSTOMER, "Any news?", minutes=9)], link="lnk_" + "9" * 32, key="c9"
        )
        await workers[1].run(later, share=(8, 8))
        assert budgets[1].share == 1.0
        for runner in workers:
            await runner.sink("zd").aclose()


async def test_a_copy_of_a_command_this_runner_executed_is_answered_without_a_call() -> None:
    # The sync stage re-sends what an input read again after a rebalance caused (same ids,
    # attempt 2); the runner that executed the original answers the copy from memory.
    async with serve(ManualClock(), rate_limit_per_minute=LIMIT) as env:
        settings = load_settings(connectors={"zd": env.connector_settings()})
        clock = ManualClock()
        watch = WebhookWatch(quiet_seconds=60, min_writes=1, clock=clock.monotonic)
        runner = SinkRunner(settings, "zendesk", Metrics(CollectorRegistry()), watch)
        original = upsert([message(CUSTOMER, "Order 7 never arrived", minutes=0)])
        first, _, _ = await runner.run(original, share=(1, 1))
        clock.advance(60)
        assert [c.silent for c in watch.check()] == [True]  # Zendesk owes us its webhook
        before = (await env.http.get("/_sandbox/state")).json()["faults"]["requests"]
        copy = original.model_copy(update={"attempt": 2})
        again, record, letter = await runner.run(copy, share=(1, 1))
        after = (await env.http.get("/_sandbox/state")).json()["faults"]["requests"]
        assert letter is None
        assert after == before  # not one API call
        assert again.outcome is WriteOutcome.UNCHANGED
        assert again.target_entity_id == first.target_entity_id
        assert again.created_ids == first.created_ids  # the sync stage still learns the ids
        assert "a copy" in record.reason
        watch.delivered("zd")
        clock.advance(60)
        assert [c.silent for c in watch.check()] == [False]  # the copy wrote nothing new
        await runner.sink("zd").aclose()


def test_a_rebalance_never_leaves_a_lane_with_a_zero_share() -> None:
    share = PartitionShare("p.commands.zendesk", 12)
    assert share([]) == (1, 12)  # nothing known yet: a lane runs, so at least its partition
    held = [TP("p.commands.zendesk", n) for n in (0, 3, 7)] + [TP("p.raw", 0)]
    assert share(held) == (3, 12)
    assert share([]) == (3, 12)  # the view is empty mid-rebalance: the last share stands
    assert share(held[:1]) == (1, 12)


def test_the_share_looks_at_the_assignment_once_a_second_at_most() -> None:
    share = PartitionShare("p.commands.zendesk", 12)
    now = [100.0]
    looked: list[None] = []
    held = [TP("p.commands.zendesk", n) for n in (0, 3)]

    def assignment() -> list[TP]:
        looked.append(None)
        return held

    current = share.looking_every(1.0, assignment, clock=lambda: now[0])
    assert current() == (2, 12)
    held.append(TP("p.commands.zendesk", 5))  # a rebalance gave this worker a partition
    now[0] += 0.5
    assert current() == (2, 12)  # not looked at again within the second
    now[0] += 0.5
    assert current() == (3, 12)
    assert len(looked) == 2
