"""The timers agent's bookkeeping (the agent itself runs in tests/e2e/test_contact_holds.py,
where a worker killed mid-hold still sends its timer)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from app.agents.timers import _Pending
from app.metrics import Metrics

A, B = ("deskstream.timers", 0), ("deskstream.timers", 1)


def pending_gauge(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("deskstream_timers_pending")
    assert value is not None
    return value


async def test_a_revoked_partition_timers_are_dropped_and_counted_once() -> None:
    metrics = Metrics(CollectorRegistry())
    pending = _Pending(metrics)
    waits = [asyncio.ensure_future(asyncio.sleep(60)) for _ in range(2)]
    due = asyncio.get_running_loop().create_future()
    for task in waits:
        pending.add(A, task)
    pending.add(B, due)
    assert pending_gauge(metrics) == 3
    assert pending.drop([A]) == 2  # left to the partition's next owner
    await asyncio.sleep(0)  # the cancelled tasks' callbacks run
    assert all(task.cancelled() for task in waits)
    assert pending_gauge(metrics) == 1
    assert not due.done()  # another partition's timer waits on
    due.set_result(None)
    await asyncio.sleep(0)
    assert pending_gauge(metrics) == 0
    assert pending.drop([A, B]) == 0
