"""Positions: what may have run before, what is delivered, and no record skipped on the way to
the agent (a gap is read again from the first missing record)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.types import TP

from app.agents import positions as positions_module
from app.agents.positions import Positions

TOPIC = "commands.intercom"


@dataclass
class _Consumer:
    """Faust's consumer as Positions uses it (its committed and read offsets, seeks)."""

    committed: dict[TP, int | None] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    end: int = 100
    log_start: int = 0
    _read_offset: dict[TP, int | None] = field(default_factory=dict)

    @property
    def _committed_offset(self) -> dict[TP, int | None]:
        return self.committed

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.log_start)

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


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_gap_is_read_again_from_the_first_missing_record() -> None:
    consumer = _Consumer()
    positions = Positions(_app(consumer))
    assert [positions.received(_event(o)) for o in (0, 1)] == [True, True]
    assert positions.received(_event(3)) is False  # 2 never reached the agent
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 2)]
    assert consumer._read_offset[TP(TOPIC, 3)] == 2  # read up to the target, not past it
    assert positions.received(_event(4)) is False  # fetched before the seek took effect
    assert positions.received(_event(3)) is False  # not the first missing one either
    assert [positions.received(_event(o)) for o in (2, 3, 4)] == [True, True, True]


async def test_a_seek_that_did_not_bring_the_missing_record_is_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust filtered 5..7 out as read: nothing more comes on this quiet partition unless
    # the seek is made again, on a timer.
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    consumer = _Consumer(committed={TP(TOPIC, 3): 5})
    positions = Positions(_app(consumer))
    assert positions.received(_event(8)) is False
    await asyncio.sleep(0.05)
    assert len(consumer.seeks) >= 2
    assert set(consumer.seeks) == {(TP(TOPIC, 3), 5)}
    assert positions.received(_event(5)) is True
    await asyncio.sleep(0.05)
    seeks = len(consumer.seeks)
    await asyncio.sleep(0.05)
    assert len(consumer.seeks) == seeks  # back: no more seeks


async def test_a_partition_that_resumes_past_its_committed_offset_is_read_from_there() -> None:
    # Assigned again with nothing committed, the fetcher went on at 2: 0 and 1 were dropped
    # while the flow was suspended (how the cluster suite lost two commands).
    consumer = _Consumer(committed={TP(TOPIC, 3): None})
    positions = Positions(_app(consumer))
    assert positions.received(_event(2)) is False
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 0)]
    assert [positions.received(_event(o)) for o in (0, 1, 2)] == [True, True, True]
    assert not positions.may_have_run(_event(101))
    assert positions.may_have_run(_event(2))  # below the end offset at the first fetch


async def test_a_log_that_starts_later_is_read_from_its_start() -> None:
    consumer = _Consumer(committed={}, log_start=10)  # retention removed offsets 0..9
    positions = Positions(_app(consumer))
    assert positions.received(_event(12)) is False
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 10)]
    assert [positions.received(_event(o)) for o in (10, 11, 12)] == [True, True, True]
