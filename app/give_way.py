"""Webhook deliveries waiting for their answer, and the batch agents giving way to them.

One event loop answers webhooks and runs normalize and sync. Those agents take batches of up
to 500 records and let the loop turn every ``TURN_EVERY`` records (16: about 2 ms of
normalize's work, more of sync's); a delivery whose next step became ready in between (its
body read, its Kafka ack come back) waits for that turn. While any delivery is being
answered, the agents let the loop turn before every record instead: the platforms' answers
come first, and the records wait in Kafka, which is what the raw topic is for.

Measured (``bench.ingest_pipeline``, 64 connections, one worker that also normalizes every
delivery): without giving way, the worker kept normalize up with the deliveries at the
deliveries' expense, 1,701 to 1,731 deliveries/s; giving way, 2,471 to 2,687/s, acknowledge p99
41 to 43 ms against 58 to 62. A turn per record costs a worker with nothing to answer about 20
µs a record, so it is taken only while deliveries wait (``docs/performance.md``, "Batches taken
from the channel queue").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

__all__ = ["TURN_EVERY", "WaitingDeliveries", "giving_way"]

#: records a batch agent works through between two turns of the loop, with nothing waiting
TURN_EVERY = 16

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


async def giving_way(items: Iterable[T], waiting: WaitingDeliveries) -> AsyncIterator[T]:
    """``items``, letting the loop turn before every ``TURN_EVERY``-th one, and before each
    one while deliveries wait for their answer."""
    for n, item in enumerate(items, 1):
        if waiting or n % TURN_EVERY == 0:
            await asyncio.sleep(0)
        yield item
