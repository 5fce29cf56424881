"""A cluster of real worker processes in one consumer group, under the failures a contact
center's operations bring: workers killed (kill -9), a rolling deploy (SIGTERM one by one), a
platform down for a while, a Kafka broker killed. The traffic is the whole support journey
(``workload``); the verdict is counts on both platforms and in the workers' logs: every ticket,
comment, reply and status exactly once, nothing orphaned, nothing dead-lettered, no command
executed twice.

CI runs ``DESKSTREAM_CLUSTER_CONVERSATIONS`` (default 12) conversations per test and a 20 s
outage; ``make soak`` runs 60 conversations and the full 60 s outage. Each test prints its
counts (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.rehearsal import SyncStack, sync_stack
from sandboxes.base.faults import ADMIN_PREFIX, FaultProfile
from tests.cluster.workload import Counts, Workload
from tests.kafka_harness import LocalCluster

SIZE = int(os.environ.get("DESKSTREAM_CLUSTER_CONVERSATIONS", "12"))
OUTAGE_S = float(os.environ.get("DESKSTREAM_CLUSTER_OUTAGE_SECONDS", "20"))

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(600 + 60 * SIZE)]


async def _faults(stack: SyncStack, platform: str) -> dict[str, Any]:
    """What a sandbox's fault injection did."""
    faults: dict[str, Any] = (await stack.sandbox_state(platform))["faults"]
    return faults


async def _report(name: str, stack: SyncStack, counts: Counts) -> None:
    faults = {p: await _faults(stack, p) for p in ("intercom", "zendesk")}
    print(f"\n[{name}] {counts.summary()}\n[{name}] sandbox faults: {faults}")


async def test_workers_killed_mid_run_lose_and_double_nothing(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path,
        faults="burst",  # 429 bursts, webhook noise, one write in twenty ambiguous
        workers=3,
        partitions=6,
        name="cluster-kill",
    ) as stack:
        first, second = stack.workers[1], stack.workers[2]

        async def disrupt(milestone: str) -> None:
            if milestone == "started":  # tickets are being created right now
                await asyncio.to_thread(first.kill)
            elif milestone == "ticketed":  # the first one back, then another one dies
                await asyncio.to_thread(first.start)
                await asyncio.to_thread(second.kill)

        counts = await Workload(stack, SIZE).run(disrupt)
        await _report("kill -9", stack, counts)
        assert counts.problems() == []
        ambiguous = [(await _faults(stack, p))["ambiguous_writes"] for p in ("intercom", "zendesk")]
        assert sum(ambiguous) > 0  # the hard case happened


async def test_a_rolling_restart_executes_no_command_twice(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    async with sync_stack(
        kafka_bootstrap_servers, tmp_path, workers=3, partitions=6, name="cluster-roll"
    ) as stack:
        start = stack.requests.since(0.0)[-1].at if stack.requests.since(0.0) else 0.0
        stops: list[tuple[int | None, list[str]]] = []

        async def disrupt(milestone: str) -> None:
            if milestone == "started":  # a deploy: each worker stopped and started in turn
                for worker in stack.workers:
                    await asyncio.to_thread(worker.stop)
                    stops.append((worker.process.returncode, worker.critical_lines()))
                    await asyncio.to_thread(worker.start)

        counts = await Workload(stack, SIZE).run(disrupt)
        await _report("rolling restart", stack, counts)
        assert counts.problems() == []
        # A deploy's SIGTERM under traffic is a clean stop, not a crash: exit status 0, and
        # nothing at critical level (the batches it leaves unsent are read again, not lost).
        assert stops == [(0, [])] * len(stack.workers), stops
        # The platforms' side of "no command executed twice": the worker's own writes that
        # create something, as the sandboxes answered them.
        writes = Counter(
            (r.platform, r.method, _shape(r.path))
            for r in stack.worker_requests(start)
            if r.method == "POST" and r.status < 300
        )
        print(f"[rolling restart] worker writes: {dict(writes)}")
        assert writes[("intercom", "POST", "/conversations/{id}/reply")] == SIZE
        created = (
            writes[("zendesk", "POST", "/api/v2/tickets")]
            + writes[("zendesk", "POST", "/api/v2/imports/tickets")]
        )
        assert created == SIZE


def _shape(path: str) -> str:
    return "/".join("{id}" if part.isdigit() else part for part in path.split("/"))


async def test_a_platform_down_for_a_while_loses_nothing(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path,
        workers=2,
        partitions=4,
        name="cluster-outage",
        # Backoff capped at 20 s: 12 attempts span ~3 minutes (production's 60 s cap: ~7),
        # well past the outage; only a longer one would dead-letter, and `dlq retry` fixes it.
        extra_env={"DESKSTREAM_SINK_MAX_BACKOFF_SECONDS": "20"},
    ) as stack:

        async def disrupt(milestone: str) -> None:
            if milestone == "started":  # Zendesk's API goes down while the tickets are made
                outage = FaultProfile(name="outage", outage_windows=((0.0, OUTAGE_S),))
                applied = await stack.zd_agent.put(
                    f"{ADMIN_PREFIX}/faults", json=outage.model_dump(mode="json")
                )
                applied.raise_for_status()
                await asyncio.sleep(OUTAGE_S + 1)  # people cannot read Zendesk meanwhile

        counts = await Workload(stack, SIZE).run(disrupt)
        await _report("platform down", stack, counts)
        assert counts.problems() == []  # includes: no dead letters
        assert (await _faults(stack, "zendesk"))["outages"] > 0  # the worker ran into it


async def _busiest_leader(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        leaders = Counter(p["leader"] for p in described["partitions"])
        leader: int = leaders.most_common(1)[0][0]
        return leader
    finally:
        await admin.close()


async def test_a_partition_leader_killed_mid_run_loses_and_doubles_nothing(
    kafka_cluster3_faults: LocalCluster, tmp_path: Path
) -> None:
    cluster = kafka_cluster3_faults
    async with sync_stack(
        cluster.bootstrap_servers,
        tmp_path,
        workers=2,
        partitions=4,
        replication=3,
        name="cluster-leader",
    ) as stack:
        victim: list[int] = []

        async def disrupt(milestone: str) -> None:
            if milestone == "started":
                leader = await _busiest_leader(
                    cluster.bootstrap_servers, stack.settings.topic("commands.zendesk")
                )
                victim.append(leader)
                await asyncio.to_thread(cluster.kill, leader)
            elif milestone == "answered":
                await asyncio.to_thread(cluster.restart, victim[0])

        counts = await Workload(stack, SIZE).run(disrupt)
        await _report(f"leader {victim} killed", stack, counts)
        assert counts.problems() == []
