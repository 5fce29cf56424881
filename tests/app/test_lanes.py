"""Lanes: per-partition order, pause when behind, resume when caught up, with the partition
identities faust's consumer accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

import faust
from aiokafka.structs import TopicPartition
from faust.types import TP

from app.agents.lanes import Lanes


class Consumer:
    """What faust's consumer does with pause and resume: it keeps the partitions it is given
    in its active set and asserts, on every fetch, that they are faust TPs."""

    def __init__(self, assigned: set[TP]) -> None:
        self.active: set[Any] = set(assigned)
        self.assigned = assigned
        self.paused: list[Any] = []
        self.resumed: list[Any] = []

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        self.paused += list(tps)
        self.active.difference_update(self.paused)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        tps = list(tps)
        self.resumed += tps
        self.active.update(tps)  # as faust 0.15 does: the objects as given

    def assignment(self) -> set[TP]:
        return self.assigned

    def fetch_check(self) -> bool:
        return all(isinstance(tp, TP) for tp in self.active)


def _event(tp: TopicPartition, offset: int) -> faust.EventT[Any]:
    return cast(faust.EventT[Any], SimpleNamespace(message=SimpleNamespace(tp=tp), offset=offset))


async def test_a_lane_behind_pauses_and_resumes_its_partition_as_a_faust_tp() -> None:
    gate = asyncio.Event()
    handled: list[int] = []

    async def handler(event: faust.EventT[Any]) -> None:
        await gate.wait()
        handled.append(cast(Any, event).offset)

    consumer = Consumer({TP("commands.zendesk", 0)})
    lanes = Lanes(handler, lambda: consumer, depth=4)
    # aiokafka's driver hands over its own TopicPartition, not faust's TP
    for offset in range(6):
        lanes.submit(_event(TopicPartition("commands.zendesk", 0), offset))
    assert consumer.paused == [TP("commands.zendesk", 0)]
    gate.set()
    for _ in range(100):
        if len(handled) == 6:
            break
        await asyncio.sleep(0.01)
    await lanes.stop()
    assert handled == [0, 1, 2, 3, 4, 5]  # in order
    assert consumer.resumed == [TP("commands.zendesk", 0)]
    assert all(type(tp) is TP for tp in consumer.paused + consumer.resumed)
    assert consumer.fetch_check()  # faust's fetcher would not crash
