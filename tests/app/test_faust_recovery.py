"""A rebalance that overtakes a table recovery restarts it (``app.faust_recovery``): the
standby seek never hands aiokafka the offset-less partitions the rebalance just added."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import faust
import pytest
from faust.tables.recovery import RebalanceAgain
from faust.types import TP

from app.faust_recovery import RebalanceSafeRecovery, TableManager

CHANGELOG = TP("deskstream-links-changelog", 3)


class _Seeks:
    """Records what a recovery asks the consumer to seek to."""

    def __init__(self) -> None:
        self.seeks: list[dict[TP, int]] = []

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(dict(partitions))


def _recovery() -> RebalanceSafeRecovery:
    app = faust.App("recovery-check", broker="kafka://127.0.0.1:1", TableManager=TableManager)
    recovery = cast(Any, app.tables).recovery
    assert isinstance(recovery, RebalanceSafeRecovery)
    return recovery


async def test_the_standby_seek_after_a_second_rebalance_restarts_the_recovery() -> None:
    recovery = _recovery()
    # What on_rebalance leaves for a newly assigned standby partition: no offset yet, and
    # the signal that a new recovery must start.
    offsets: Counter[TP] = Counter()
    offsets[CHANGELOG] = cast(int, None)
    recovery.signal_recovery_start.set()
    consumer = _Seeks()
    with pytest.raises(RebalanceAgain):  # _restart_recovery's loop starts over on this
        await recovery._wait(
            recovery._seek_offsets(cast(Any, consumer), {CHANGELOG}, offsets, "standby")
        )
    assert consumer.seeks == []


async def test_without_a_rebalance_the_recovery_seeks_as_faust_does() -> None:
    recovery = _recovery()
    offsets: Counter[TP] = Counter({CHANGELOG: 41, TP("deskstream-links-changelog", 4): -1})
    consumer = _Seeks()
    await recovery._seek_offsets(cast(Any, consumer), set(offsets), offsets, "standby")
    assert consumer.seeks == [{CHANGELOG: 41, TP("deskstream-links-changelog", 4): 0}]
