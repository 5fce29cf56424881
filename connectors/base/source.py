"""The pull side of a connector: feeds Deskstream reads itself (CDC subscriptions, polling
cursors), next to the webhooks platforms push.

A ``Source`` has a stable ``name`` (``<connector id>.<kind>``, e.g. ``support.tickets``): the
key its position is stored under and the lease a worker holds while running it, so renaming
one starts it over. It reads from a ``Position``, a JSON object of its own making (a replay
id, a cursor, a timestamp), or ``None`` on the very first run, where each source documents
where it starts. It yields ``SourceBatch``es: raw records in exactly the shape webhook ingest
writes to ``deskstream.raw`` (a ``RawDelivery`` and its key ``<connector>:<entity>:<id>``),
so they take the same normalise path, and the position to store once every record of the
batch is acknowledged by Kafka.

The contract between a source and the runtime (``app.agents.sources``):

- the runtime stores a batch's position only after Kafka acknowledged all its records
  (``acks=all``), and starts the next read from it: a crash re-reads at most the batches
  whose position was not stored yet;
- a delivery read twice must come out the same: ``delivery_id`` is derived from the
  record's own identity and version (a replay id, a ticket id and its update time), never
  from the time of reading, so its canonical event ids are the same and the sync stage's
  dedupe drops the copy;
- the runtime asks for the next batch only after storing the last one (an async iterator is
  naturally pulled), and a source waits by itself when it has nothing new (a poll interval,
  a long poll, a subscription's idle wait);
- errors leave the iterator: ``RetriableAPIError`` (and any other exception) makes the
  runtime close the source, back off and start it again from the stored position;
  ``FatalAPIError`` and ``ConfigurationError`` are retried too, slower, with one clear error
  line each time: a pull feed has no message to dead-letter, and the operator's fix (a
  token, a permission) must not need a restart;
- ``aclose`` releases connections; the runtime calls it when the lease is lost (a rebalance
  gave the source to another worker) before that worker starts reading.

Transport-agnostic: a polling source sleeps between reads inside ``batches``; a
subscription keeps its connection open between yields and turns its replay id into the
position.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from schemas.models import RawDelivery

__all__ = [
    "BACKFILL_HEADER",
    "RECONCILE_EVENT_TYPE",
    "SOURCE_HEADER",
    "Position",
    "RawRecord",
    "Source",
    "SourceBatch",
    "is_reconciliation",
    "marked_backfill",
]

#: raw-delivery header naming what pulled a record; webhook ingest keeps only the headers a
#: connector lists (``IngestConnector.kept_headers``), never this one, so no webhook can pass
#: for a pulled record
SOURCE_HEADER = "deskstream-source"

#: raw-delivery header of the records a backfill read (``deskstream backfill``): their events
#: say ``source.snapshot`` and their commands ``backfill``, which the sinks serve after live
#: ones; like ``SOURCE_HEADER``, webhook ingest never keeps it
BACKFILL_HEADER = "deskstream-backfill"

#: ``source.event_type`` of a reconciliation's observation of a record (any platform): the
#: record as re-read, naming no field; the sync stage compares every synced field of it with
#: what the link believes and repairs what drifted (``streams.flows.case_fields``)
RECONCILE_EVENT_TYPE = "deskstream:reconcile"


def is_reconciliation(event_type: str) -> bool:
    return event_type == RECONCILE_EVENT_TYPE


#: a source's own bookmark: JSON-serialisable (stored as JSON in Kafka); None on a first run
Position = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record for ``deskstream.raw``, as webhook ingest would write it."""

    #: ``<connector>:<entity type>:<entity id>``: a record's changes stay in one partition
    key: str
    delivery: RawDelivery
    #: when the platform last changed the record, where the source knows it (a poll): the
    #: webhook watch compares it with the last delivery (``app.webhook_watch``)
    changed_at: datetime | None = None


def marked_backfill(record: RawRecord) -> RawRecord:
    """``record`` as a backfill writes it: the same delivery id (so the same event ids as a
    poll's or a webhook's copy), with ``BACKFILL_HEADER``."""
    headers = {**record.delivery.headers, BACKFILL_HEADER: "1"}
    delivery = record.delivery.model_copy(update={"headers": headers})
    return RawRecord(key=record.key, delivery=delivery, changed_at=record.changed_at)


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Records to write, and where the source stands once they are in Kafka."""

    records: list[RawRecord]
    position: Position
    #: the source time the position has reached (the newest change read), for lag metrics
    position_time: datetime | None = None
    #: the source has read everything available for now (it will wait before the next batch)
    caught_up: bool = False
    #: a short, secret-free note for the log line of this batch (pages read, ...)
    detail: str = field(default="")
    #: how many records the whole read will yield, when the platform says (a search's total
    #: count): a backfill's progress bar shows it
    total: int | None = None


class Source(abc.ABC):
    """A pull-based feed of one connector; see the module docstring for the contract."""

    #: the position holds what the source remembers of what it read (Salesforce's
    #: reconciliation: the digests it compares with), so a one-shot pass of it
    #: (``deskstream reconcile``) starts from the worker's stored position
    remembers: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Stable, unique among the worker's sources: ``<connector id>.<kind>``."""

    @abc.abstractmethod
    def batches(self, position: Position | None) -> AsyncIterator[SourceBatch]:
        """Batches from ``position`` on (None: the documented first-run start), forever."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections; called when the lease is lost or the worker stops."""
