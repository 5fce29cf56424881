"""Webhook deliveries waiting for their answer, and the batch agents giving way to them.

One event loop answers webhooks and runs normalize and sync. Those agents take batches of up
to 500 records and let the loop turn every ``TURN_EVERY`` records (16: about 2 ms of
normalize's work, more of sync's); a delivery whose next step became ready in between (its
body read, its Kafka ack come back) waits for that turn.

While any delivery is being answered, an agent lets the loop turn before every record
instead, and gives most of a loop that has no slack to the rest of it. Before each record it
lets the loop turn again and again until the rest of the loop has had ``OTHERS_PER_OWN`` (9)
times the agent's time on the record before, and stops early when no delivery waits any more
or when a turn comes back at once (``IDLE_TURN_S``: nothing else was ready to run, the slack
is the agent's). What is owed is capped (``MAX_DEFER_S``), and a record that took longer
than any record's own work (``MAX_OWN_S``: a sync input that awaited an owner lookup, while
the loop ran the others) is not charged, so a record never waits long.

So an agent's records take at most a tenth of a busy loop, each agent's own (normalize and
sync together, at most a fifth). What the records cause besides is not counted: a batch's
last record and its tail (sending what the batch caused, the acks, the dedupe's changelog),
and Faust's reading of the records. The turn that pays the debt off runs over it, and what
it ran over is not carried on either.

The agents use all the slack the deliveries leave, and a worker answering webhooks as fast
as it can answers them first, while the records wait in Kafka, which is what the raw topic
is for. Under more deliveries than the worker can both answer and normalise, the answers keep
their pace as long as answering alone fits the core, and the raw topic's lag
(``deskstream_consumer_lag_records``) grows until the load falls; normalize never stops.

Measured (``bench.ingest_pipeline``, 64 connections, one worker that also normalizes every
delivery):
- with no giving way, normalize kept up with the deliveries at the deliveries' expense:
  1,701 to 1,731 deliveries/s, on the slower machine of 2026-12-05 (``docs/performance.md``,
  "Batches taken from the channel queue");
- a turn before every record while deliveries waited: 2,471 to 2,687/s that day; on
  2026-12-06, 2,666 to 4,365/s in twelve runs, 22 to 45 % of the burst normalised within it;
- at most a tenth of a busy loop, alternating with those: 3,288 to 4,969/s, 20 % more on
  average, 6 to 27 % normalised within the burst (``docs/performance.md``, "Deliveries
  first").
A turn per record costs a worker with nothing to answer about 20 µs a record, so it is taken
only while deliveries wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

__all__ = [
    "IDLE_TURN_S",
    "MAX_DEFER_S",
    "MAX_OWN_S",
    "OTHERS_PER_OWN",
    "TURN_EVERY",
    "WaitingDeliveries",
    "giving_way",
]

#: records a batch agent works through between two turns of the loop, with nothing waiting
TURN_EVERY = 16
#: while deliveries wait for an answer, the rest of the event loop gets this many times a
#: batch agent's time on its records: they take at most a tenth of a loop that has no slack
OTHERS_PER_OWN = 9
#: a loop turn that came back within this ran nothing else: the loop has slack to give. An
#: empty turn (a select that finds nothing, the agent's own step) takes 10 to 20 µs on the
#: 2-core machine of the benchmarks; a delivery's least step, about 50. A worker the OS
#: preempts mid-turn sees a slow empty turn: it turns again, until a fast one or the debt
#: is paid.
IDLE_TURN_S = 40e-6
#: the most loop time the rest of the loop can be owed before a record: a record waits about
#: that long at most (and the turn that passes it)
MAX_DEFER_S = 0.005
#: a record the agent spent longer on awaited something meanwhile (the time is the wall
#: clock's: a sync input's owner lookup), and the loop ran the others then: not charged.
#: Normalising a record takes about 0.1 ms, deciding a sync input about 0.4.
MAX_OWN_S = 0.002

T = TypeVar("T")


class WaitingDeliveries:
    """How many webhook deliveries this worker is answering right now: counted by
    ``app.ingest.WebhookIngest`` from a request's start to its answer, read by the batch
    agents between records."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *exc_info: object) -> None:
        self.count -= 1


async def giving_way(
    items: Iterable[T],
    waiting: WaitingDeliveries,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> AsyncIterator[T]:
    """``items``, letting the loop turn before every ``TURN_EVERY``-th one; while deliveries
    wait for their answer, before each one, and as often as leaves the rest of the loop
    ``OTHERS_PER_OWN`` times the agent's time on the item before (the module's doc)."""
    owed = 0.0  # loop time the rest of the loop is still owed for the agent's own
    handed = clock()  # when the last item went to the agent
    for n, item in enumerate(items, 1):
        if waiting:
            now = clock()
            own = now - handed  # the agent's time on the record before
            if own <= MAX_OWN_S:
                owed = min(owed + own * OTHERS_PER_OWN, MAX_DEFER_S)
            while True:
                await asyncio.sleep(0)
                turned = clock()
                turn = turned - now
                now = turned
                owed -= turn
                if turn < IDLE_TURN_S:  # nothing else was ready: the slack is the agent's
                    owed = 0.0
                if owed <= 0.0 or not waiting:
                    break
            owed = max(owed, 0.0)
        else:
            owed = 0.0
            if n % TURN_EVERY == 0:
                await asyncio.sleep(0)
        handed = clock()
        yield item
