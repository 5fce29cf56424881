"""One record per event on ``deskstream.events``: normalize drops an event it already sent.

The state is the ``recent_events`` table (``app.tables``): raw-topic key → the event ids sent
for it lately (``streams.recent_ids``, time- and count-bounded bytes). It is keyed by the raw
record's key and written to the changelog partition of the raw record, so a redelivery, which
carries the same key, is always read where its ids are.

**Order of writes, and the one window for a second copy.** An event's id is remembered (the
table's value set and its changelog record sent) only once Kafka has acknowledged every record
the delivery caused on ``deskstream.events`` and ``deskstream.sync`` (normalize works in
batches: every record its batch caused); the raw record is acked, and so committable, only
once that changelog record is acknowledged too. A batch writes one changelog record per key,
whatever number of its records share the key. Hence:

- a restored state that holds an id always comes with the event in Kafka: reading the raw
  record again (a crash, a rebalance) drops it safely, nothing is lost;
- a state without the id re-sends the event. That is a second copy on the canonical topic
  exactly when the worker dies (or loses the partition without a clean revocation) **after
  Kafka acknowledged the event and before it acknowledged the changelog record**: one
  ``acks=all`` round trip of the changelog write, which starts the moment the event is
  acknowledged. A clean revocation or stop waits for it (``app.agents.acks.settle``);
- a RocksDB state that holds an id its changelog lacks (the store on disk outlived a stop
  between the table's write and the changelog record's acknowledgement) drops the copy. A
  raw record read again (a restart, a rebalance) whose events were all copies is therefore
  given to ``remember_all`` with no ids (``SentIds.digests`` empty): its key's state goes to
  the changelog again before the record is acked, or the partition's next owner would
  restore a state without them (as the sync stage's links, ``app.agents.sync.changelog_state``;
  with the memory store, one record more per key and batch after a restart).

Copies that arrive while the first is on its way (not yet acknowledged) are dropped too:
its id is in ``_pending``, one for every key (an event id names the event, whatever record
carries it). A copy's record is acked only once the first's batch is remembered
(``remember_batch``). A failed send crashes the worker (``ack_all_when_delivered``), and
every delivery of the event is then read again from the committed offset.

Not caught here (the sync stage still drops them by id, ``streams.sync``): a copy whose raw
key differs from the original's, once the original is remembered (keys are read from the
body, best effort), one beyond the window, and one whose id the count bound evicted
(``deskstream_dedupe_ids_evicted_total``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple, Protocol

import faust

# Faust's own "current event" (``faust.streams.current_event`` reads it): a RocksDB store
# finds the partition, and so the database, a table write goes to from it.
from faust.streams import _current_event

from app.agents.acks import hold, revoked_since_read
from app.metrics import Metrics
from schemas.models import Envelope
from streams.recent_ids import contains, digest, remember

__all__ = ["Changelog", "EventDedupe", "SentIds"]


class Changelog(Protocol):
    """Where the table's changelog records go (``app.agents.batch_send.TableChangelog``)."""

    async def write(
        self, records: Sequence[tuple[int, bytes, bytes]]
    ) -> Sequence[Awaitable[Any]]: ...


class SentIds(NamedTuple):
    """The event ids one raw record sent, to remember once Kafka acknowledged them (a tuple:
    one is made per raw record, and a frozen dataclass costs three times as much to make)."""

    key: bytes
    partition: int
    #: the ids to remember (none: the key's state is written to the changelog as it is)
    digests: list[bytes]
    #: the raw record's timestamp, Unix seconds
    now: int
    platform: str
    #: the raw record's Faust event (None: no RocksDB store to find a partition for)
    event: faust.EventT[Any] | None = None


class EventDedupe:
    def __init__(
        self,
        table: faust.types.TableT[bytes, bytes],
        metrics: Metrics,
        *,
        changelog: Changelog,
        window_seconds: int,
        max_ids: int,
    ) -> None:
        self._table = table
        self._changelog = changelog
        self._metrics = metrics
        self._window = window_seconds
        self._max_ids = max_ids
        #: digests of events sent and not yet remembered (their sends in flight), each with
        #: the remembering of the batch that sent it (None: the batch being read)
        self._pending: dict[bytes, asyncio.Future[None] | None] = {}
        #: the rememberings of earlier batches whose events the batch being read dropped as
        #: copies in flight: its records are acked only after them (``remember_batch``)
        self._originals: set[asyncio.Future[None]] = set()

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
        pending = self._pending
        window = self._window
        kept: list[tuple[Envelope, bytes]] = []
        digests: list[bytes] = []
        for event, data in events:
            d = digest(event.event_id)
            if d in pending:
                original = pending[d]
                if original is not None:
                    self._originals.add(original)
            elif d not in digests and not contains(state, d, now=now, window=window):
                kept.append((event, data))
                digests.append(d)
                continue
            self._metrics.duplicates_dropped.labels(platform).inc()
        for d in digests:
            pending[d] = None
        return kept, digests

    def remember_batch(
        self, sent: Sequence[SentIds], sends: Sequence[Awaitable[Any]]
    ) -> list[asyncio.Future[Any]]:
        """For the batch being read, once its records' ``sends`` are out: ``remember_all``
        under way, and what its raw records are to be acked after. That is the remembering,
        and the rememberings of earlier batches whose events it dropped as copies in flight:
        acked before their original is in Kafka, such a copy's record could be committed
        past an event a failed send then loses (an original from before a revocation that
        the settle did not wait out, its partition assigned back here)."""
        waits: list[asyncio.Future[Any]] = list(self._originals)
        self._originals.clear()
        if sent:
            remembering = hold(asyncio.ensure_future(self.remember_all(sent, list(sends))))
            pending = self._pending
            for ids in sent:
                for d in ids.digests:
                    pending[d] = remembering
            waits.append(remembering)
        return waits

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
        changelog record is acknowledged."""
        await self.remember_all([SentIds(key, partition, digests, now, platform)], sends)

    async def remember_all(self, sent: Sequence[SentIds], sends: Sequence[Awaitable[Any]]) -> None:
        """Once ``sends`` (every record the raw records of ``sent`` caused) are acknowledged,
        remember their ids: one table write and one changelog record per key, however many
        of its records the batch held. Done when the changelog records are acknowledged."""
        changelogs: Sequence[Awaitable[Any]] = []
        evicted: Counter[str] = Counter()
        try:
            await asyncio.gather(*sends)
            store = self._table.data
            window, max_ids = self._window, self._max_ids
            states: dict[bytes, tuple[bytes, SentIds]] = {}
            for ids in sent:  # in reading order: the key's state as if one after the other
                if ids.event is not None and revoked_since_read(ids.event):
                    continue  # its partition's next owner has the table now (acks.Revocations)
                held = states.get(ids.key)
                done = remember(
                    held[0] if held is not None else store.get(ids.key),
                    ids.digests,
                    now=ids.now,
                    window=window,
                    max_ids=max_ids,
                )
                states[ids.key] = (done.state, ids)
                if done.evicted:
                    evicted[ids.platform] += done.evicted
            for key, (state, last) in states.items():
                if last.event is not None:
                    _current_event.set(weakref.ref(last.event))
                store[key] = state  # `table[key] = value` without its changelog
            changelogs = await self._changelog.write(
                [(last.partition, key, state) for key, (state, last) in states.items()]
            )
        finally:
            pending = self._pending
            for ids in sent:
                for d in ids.digests:
                    pending.pop(d, None)
        for platform, count in evicted.items():
            self._metrics.dedupe_evicted.labels(platform).inc(count)
        await asyncio.gather(*changelogs)
