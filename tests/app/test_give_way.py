"""``app.give_way``: batch agents let the event loop turn every ``TURN_EVERY`` records; while
webhook deliveries wait for their answer, before every record, and as often as leaves the rest
of a busy loop ``OTHERS_PER_OWN`` times the agent's own time. Loop turns are counted by a task
that notes each turn it gets while a batch is worked through; time is a clock the test moves
(the other task's turn and the agent's record each take what the test says), so the counts
are exact."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from app.give_way import (
    IDLE_TURN_S,
    MAX_DEFER_S,
    MAX_OWN_S,
    OTHERS_PER_OWN,
    TURN_EVERY,
    WaitingDeliveries,
    giving_way,
)

RECORDS = 10 * TURN_EVERY
#: a busy turn's and a record's time: above IDLE_TURN_S, and a time binary floating point
#: holds exactly, so the counts below are exact too
T = 2**-14


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _turns_while_taking(
    waiting: WaitingDeliveries,
    *,
    turn_takes: float | Callable[[int], float] = 0.0,
    record_takes: float = 0.0,
    waiting_from: int | None = None,
    waiting_until: int | None = None,
) -> tuple[list[int], int]:
    """(the records in the order they came, the turns another task got meanwhile). The other
    task's n-th turn in the batch takes ``turn_takes`` s (or ``turn_takes(n)``), each record
    ``record_takes``; deliveries start waiting at its ``waiting_from``-th turn and stop at
    its ``waiting_until``-th."""
    clock = Clock()
    turns = 0
    started: int | None = None  # the other task's turns before the batch
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            # a scheduler that keeps the agent turning the loop for ever fails here
            assert turns <= 100 * RECORDS, "the agent never took its next record"
            if started is not None:
                n = turns - started
                clock.now += turn_takes(n) if callable(turn_takes) else turn_takes
                if n == waiting_from:
                    waiting.count = 1
                if n == waiting_until:
                    waiting.count = 0
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(other_task())
    await asyncio.sleep(0)  # the watcher is running
    started = turns
    taken = []
    async for record in giving_way(range(RECORDS), waiting, clock=clock):
        taken.append(record)
        clock.now += record_takes
    got = turns - started
    done = True
    await watcher
    return taken, got


def _waiting() -> WaitingDeliveries:
    waiting = WaitingDeliveries()
    waiting.count = 1
    return waiting


async def test_with_nothing_waiting_the_loop_turns_every_so_many_records() -> None:
    taken, turns = await _turns_while_taking(WaitingDeliveries(), turn_takes=T, record_takes=T)
    assert taken == list(range(RECORDS))
    assert turns == RECORDS // TURN_EVERY


async def test_while_deliveries_wait_an_idle_loop_turns_once_before_every_record() -> None:
    # Turns that come back at once: nothing else needs the loop, the agent goes on.
    taken, turns = await _turns_while_taking(_waiting(), turn_takes=0.0, record_takes=T)
    assert taken == list(range(RECORDS))
    assert turns == RECORDS


async def test_while_deliveries_wait_a_busy_loop_gets_nine_times_the_agents_time() -> None:
    assert IDLE_TURN_S < T <= MAX_OWN_S  # busy turns, records charged
    taken, turns = await _turns_while_taking(_waiting(), turn_takes=T, record_takes=T)
    assert taken == list(range(RECORDS))  # never starved: every record, in order
    # One turn before the first record (no time of the agent's yet), then OTHERS_PER_OWN
    # turns of a record's length before each of the others.
    assert turns == 1 + OTHERS_PER_OWN * (RECORDS - 1)


async def test_an_idle_turn_forgives_what_the_loop_was_owed() -> None:
    # The batch's 2nd turn is idle, every other one busy: the 2nd record goes after it, and
    # the 3rd owes only its own record's time, not what the 2nd left unpaid.
    idle_second = lambda n: 0.0 if n == 2 else T  # noqa: E731
    taken, turns = await _turns_while_taking(_waiting(), turn_takes=idle_second, record_takes=T)
    assert taken == list(range(RECORDS))
    assert turns == 2 + OTHERS_PER_OWN * (RECORDS - 2)


async def test_what_a_record_can_be_owed_is_capped() -> None:
    record = MAX_OWN_S / 2  # charged, and nine times it is over the cap
    assert record * OTHERS_PER_OWN > MAX_DEFER_S
    taken, turns = await _turns_while_taking(_waiting(), turn_takes=T, record_takes=record)
    assert taken == list(range(RECORDS))
    assert turns == 1 + math.ceil(MAX_DEFER_S / T) * (RECORDS - 1)


async def test_a_record_that_awaited_something_is_not_charged() -> None:
    # A sync input that awaited an owner lookup: the loop ran the others meanwhile.
    taken, turns = await _turns_while_taking(_waiting(), turn_takes=T, record_takes=2 * MAX_OWN_S)
    assert taken == list(range(RECORDS))
    assert turns == RECORDS


async def test_once_no_delivery_waits_the_agent_goes_on_at_once() -> None:
    busy_turns = 25
    taken, turns = await _turns_while_taking(
        _waiting(), turn_takes=T, record_takes=T, waiting_until=busy_turns
    )
    assert taken == list(range(RECORDS))
    # The record being deferred when the deliveries were answered goes at once, and the
    # rest of the batch at the nothing-waiting pace.
    while_waiting = 1 + math.ceil((busy_turns - 1) / OTHERS_PER_OWN)
    after = sum(1 for n in range(while_waiting + 1, RECORDS + 1) if n % TURN_EVERY == 0)
    assert turns == busy_turns + after


async def test_deliveries_that_start_waiting_mid_batch_are_given_way_from_the_next_record() -> None:
    # Nothing waits: a turn at the 16th and 32nd record; the second turn starts deliveries.
    taken, turns = await _turns_while_taking(
        WaitingDeliveries(), turn_takes=T, record_takes=T, waiting_from=2
    )
    assert taken == list(range(RECORDS))
    assert turns == 2 + OTHERS_PER_OWN * (RECORDS - 2 * TURN_EVERY)


def test_waiting_is_true_only_while_deliveries_wait() -> None:
    waiting = WaitingDeliveries()
    assert not waiting
    waiting.count += 1
    assert waiting
