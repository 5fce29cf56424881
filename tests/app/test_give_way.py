"""``app.give_way``: batch agents let the event loop turn before every record while webhook
deliveries wait for their answer, and every ``TURN_EVERY`` records otherwise. Loop turns are
counted by a task that notes each turn it gets while a batch is worked through."""

from __future__ import annotations

import asyncio

from app.give_way import TURN_EVERY, WaitingDeliveries, giving_way

RECORDS = 10 * TURN_EVERY


async def _turns_while_taking(waiting: WaitingDeliveries) -> tuple[list[int], int]:
    """(the records in the order they came, the turns another task got meanwhile)."""
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(other_task())
    await asyncio.sleep(0)  # the watcher is running
    started = turns
    taken = [record async for record in giving_way(range(RECORDS), waiting)]
    got = turns - started
    done = True
    await watcher
    return taken, got


async def test_with_nothing_waiting_the_loop_turns_every_so_many_records() -> None:
    taken, turns = await _turns_while_taking(WaitingDeliveries())
    assert taken == list(range(RECORDS))
    assert turns == RECORDS // TURN_EVERY


async def test_while_deliveries_wait_the_loop_turns_before_every_record() -> None:
    waiting = WaitingDeliveries()
    waiting.count = 1
    taken, turns = await _turns_while_taking(waiting)
    assert taken == list(range(RECORDS))
    assert turns == RECORDS


def test_waiting_is_true_only_while_deliveries_wait() -> None:
    waiting = WaitingDeliveries()
    assert not waiting
    waiting.count += 1
    assert waiting
