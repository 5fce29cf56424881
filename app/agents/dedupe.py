"""One record per event on ``deskstream.events``: normalize drops an event it already sent.

The state is the ``recent_events`` table (``app.tables``): raw-topic key → the event ids sent
for it lately (``streams.recent_ids``, time- and count-bounded bytes). It is keyed by the raw
record's key and written to the changelog partition of the raw record, so a redelivery, which
carries the same key, is always read where its ids are.

**Order of writes, and the one window for a second copy.** An event's id is remembered (the
table's value set and its changelog record sent) only once Kafka has acknowledged every record
the delivery caused on ``deskstream.events`` and ``deskstream.sync``; the raw record is acked,
and so committable, only once that changelog record is acknowledged too. Hence:

- a restored state that holds an id always comes with the event in Kafka: reading the raw
  record again (a crash, a rebalance) drops it safely, nothing is lost;
- a state without the id re-sends the event. That is a second copy on the canonical topic
  exactly when the worker dies (or loses the partition without a clean revocation) **after
  Kafka acknowledged the event and before it acknowledged the changelog record**: one
  ``acks=all`` round trip of the changelog write, which starts the moment the event is
  acknowledged. A clean revocation or stop waits for it (``app.agents.acks.settle``).

Copies that arrive while the first is on its way (not yet acknowledged) are held in
``_pending`` and dropped too; a failed send crashes the worker (``ack_when_delivered``), and
every delivery of the event is then read again from the committed offset.

Not caught here (the sync stage still drops them by id, ``streams.sync``): a copy whose raw
key differs from the original's (keys are read from the body, best effort), one beyond the
window, and one whose id the count bound evicted (``deskstream_dedupe_ids_evicted_total``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

import faust

from app.metrics import Metrics
from schemas.models import Envelope
from streams.recent_ids import contains, digest, remember

__all__ = ["EventDedupe"]


class EventDedupe:
    def __init__(
        self,
        table: faust.types.TableT[bytes, bytes],
        metrics: Metrics,
        *,
        window_seconds: int,
        max_ids: int,
    ) -> None:
        self._table = table
        self._metrics = metrics
        self._window = window_seconds
        self._max_ids = max_ids
        #: raw key → digests of events sent and not yet remembered (their sends in flight)
        self._pending: dict[bytes, set[bytes]] = {}

    def fresh(
        self,
        key: bytes,
        events: Sequence[tuple[Envelope, bytes]],
        *,
        now: int,
        platform: str,
    ) -> tuple[list[tuple[Envelope, bytes]], list[bytes]]:
        """The events not sent before for ``key`` (and their digests, now pending); ``now``
        is the raw record's timestamp in Unix seconds."""
        state = self._table.data.get(key)
        pending = self._pending.get(key, set())
        kept: list[tuple[Envelope, bytes]] = []
        digests: list[bytes] = []
        for event, data in events:
            d = digest(event.event_id)
            if d in pending or d in digests or contains(state, d, now=now, window=self._window):
                self._metrics.duplicates_dropped.labels(platform).inc()
                continue
            kept.append((event, data))
            digests.append(d)
        if digests:
            self._pending.setdefault(key, set()).update(digests)
        return kept, digests

    async def remember(
        self,
        key: bytes,
        partition: int,
        digests: list[bytes],
        sends: Sequence[Awaitable[Any]],
        *,
        now: int,
        platform: str,
    ) -> None:
        """Once ``sends`` are acknowledged, remember ``digests`` for ``key``; done when the
        changelog record is acknowledged. Started as a task while the raw record is the
        current event (a RocksDB store finds its partition from it)."""
        try:
            await asyncio.gather(*sends)
            done = remember(
                self._table.data.get(key),
                digests,
                now=now,
                window=self._window,
                max_ids=self._max_ids,
            )
            # What `table[key] = value` does, keeping the changelog write's future.
            self._table.data[key] = done.state
            changelog = self._table.send_changelog(partition, key, done.state)
        finally:
            held = self._pending.get(key)
            if held is not None:
                held.difference_update(digests)
                if not held:
                    del self._pending[key]
        if done.evicted:
            self._metrics.dedupe_evicted.labels(platform).inc(done.evicted)
        await changelog
