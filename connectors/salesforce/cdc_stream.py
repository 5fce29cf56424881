"""The subscriber contract both CDC transports keep: batches of items, acked by the caller.

``async for batch in subscriber.events(channel, replay)`` yields :class:`Batch` es in stream
order. Each holds decoded items (:class:`~connectors.salesforce.cdc_items.DecodedChange`, one
per record id, or :class:`~connectors.salesforce.cdc_items.Reread`) and the position to store
once they are durably handled; positions must be stored in batch order. ``batch.ack()``
returns its events' flow-control credit: a subscriber holds at most ``max_in_flight`` events
that are delivered or requested but not yet acked, so a slow caller slows the platform down
instead of filling memory. A batch may be empty with a position (a Pub/Sub keepalive moves
the position forward on a quiet channel, so a stored position does not age past retention).

When the stored position has expired (older than the 72-hour retention), the subscriber
yields one :class:`Reread` of the channel's entities since the position's time and carries on
from new events: replaying is impossible, so the caller reads the records instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from connectors.salesforce.cdc_items import StreamItem
from connectors.salesforce.cdc_replay import ReplayPosition
from schemas.errors import ConfigurationError

__all__ = ["Batch", "ChangeSubscriber", "InFlight", "channel_entity"]

_ENTITY_CHANNEL = re.compile(r"^/data/(\w+?)(__)?ChangeEvent$")


def channel_entity(channel: str) -> str | None:
    """The entity of a single-entity channel (``/data/CaseChangeEvent`` → ``Case``,
    ``/data/Ticket__ChangeEvent`` → ``Ticket__c``); None for ``/data/ChangeEvents`` and
    custom channels, which carry several entities."""
    match = _ENTITY_CHANNEL.match(channel)
    if match is None:
        return None
    return match[1] + ("__c" if match[2] else "")


@dataclass(slots=True, eq=False)
class Batch:
    items: tuple[StreamItem, ...]
    #: store after handling every item; None: keep the position already stored
    position: ReplayPosition | None
    #: platform events in this batch (the flow-control credit ``ack`` returns)
    events: int
    _release: Callable[[int], None] = field(repr=False)
    _acked: bool = field(default=False, repr=False)

    def ack(self) -> None:
        """The items are durably handled: the subscriber may fetch this many more events."""
        if not self._acked:
            self._acked = True
            self._release(self.events)


class ChangeSubscriber(Protocol):
    def events(self, channel: str, replay: ReplayPosition | None) -> AsyncIterator[Batch]:
        """Batches of ``channel`` after ``replay`` (new events only when None)."""
        ...


class InFlight:
    """Events handed out and not yet acked, bounded by ``limit``."""

    def __init__(self, limit: int) -> None:
        if not 1 <= limit <= 100:
            # Pub/Sub grants at most 100 events per FetchRequest; one bound for both APIs.
            raise ConfigurationError(
                f"max_in_flight must be between 1 and 100, got {limit}; change the setting"
            )
        self.limit = limit
        self.unacked = 0
        self._room = asyncio.Event()
        self._room.set()
        self._on_release: Callable[[int], None] | None = None

    @property
    def free(self) -> int:
        return self.limit - self.unacked

    def on_release(self, callback: Callable[[int], None] | None) -> None:
        """Call ``callback(n)`` whenever ``n`` events are acked (the Pub/Sub grant)."""
        self._on_release = callback

    def take(self, count: int) -> None:
        self.unacked += count
        if self.free <= 0:
            self._room.clear()

    def release(self, count: int) -> None:
        self.unacked -= count
        if self.free > 0:
            self._room.set()
        if count and self._on_release is not None:
            self._on_release(count)

    async def room(self) -> int:
        """Wait until something is acked if the bound is reached; the free credit."""
        await self._room.wait()
        return self.free

    def batch(self, items: list[StreamItem], position: ReplayPosition | None, events: int) -> Batch:
        self.take(events)
        return Batch(tuple(items), position, events, self.release)
