"""Positions: what may have run before, what is delivered, and no record skipped on the way to
the agent (a gap is read again from the first missing record)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import faust
from faust.types import TP

from app.agents.positions import Positions

TOPIC = "commands.intercom"


@dataclass
class _Consumer:
    committed: dict[TP, int | None] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    end: int = 100

    @property
    def _committed_offset(self) -> dict[TP, int | None]:
        return self.committed

    def highwater(self, tp: TP) -> int:
        return self.end

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks += partitions.items()


class _Signal:
    def connect(self, receiver: Any) -> None:
        self.receiver = receiver


def _app(consumer: _Consumer) -> faust.App:
    return cast(faust.App, SimpleNamespace(consumer=consumer, on_partitions_revoked=_Signal()))


def _event(offset: int, partition: int = 3) -> faust.EventT[Any]:
    message = SimpleNamespace(topic=TOPIC, partition=partition, offset=offset)
    return cast(faust.EventT[Any], SimpleNamespace(message=message))


async def test_a_gap_is_read_again_from_the_first_missing_record() -> None:
    consumer = _Consumer()
    positions = Positions(_app(consumer))
    assert [positions.received(_event(o)) for o in (0, 1)] == [True, True]
    assert positions.received(_event(3)) is False  # 2 never reached the agent
    await asyncio.sleep(0)
    assert consumer.seeks == [(TP(TOPIC, 3), 2)]
    assert positions.received(_event(4)) is False  # fetched before the seek took effect
    assert [positions.received(_event(o)) for o in (2, 3, 4)] == [True, True, True]


async def test_a_partition_that_resumes_past_its_committed_offset_is_read_from_there() -> None:
    # Assigned again with nothing committed, the fetcher went on at 2: 0 and 1 were dropped
    # while the flow was suspended (how the cluster suite lost two commands).
    consumer = _Consumer(committed={TP(TOPIC, 3): None})
    positions = Positions(_app(consumer))
    assert positions.received(_event(2)) is False
    await asyncio.sleep(0)
    assert consumer.seeks == [(TP(TOPIC, 3), 0)]
    assert [positions.received(_event(o)) for o in (0, 1, 2)] == [True, True, True]
    assert not positions.may_have_run(_event(101))
    assert positions.may_have_run(_event(2))  # below the end offset at the first fetch


async def test_a_log_that_starts_later_is_accepted_after_one_rewind() -> None:
    consumer = _Consumer(committed={})  # retention removed offsets 0..9
    positions = Positions(_app(consumer))
    assert positions.received(_event(10)) is False
    await asyncio.sleep(0)
    assert positions.received(_event(10)) is True  # the seek to 0 lands on the log start
    assert positions.received(_event(11)) is True
    assert consumer.seeks == [(TP(TOPIC, 3), 0)]
