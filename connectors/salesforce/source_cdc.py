"""Change Data Capture as a ``Source``: one channel's subscription over the transport the
connector picks, its replay position stored by the runtime.

Kinds: ``cdc_case`` (``/data/CaseChangeEvent``) and ``cdc_contact``
(``/data/ContactChangeEvent``), one subscription each, so each channel has its own position
and a worker of its own. Settings (``SOURCES__<kind>__...``): ``TRANSPORT`` ``pubsub`` (the
default; gRPC to ``PUBSUB_ENDPOINT``) or ``cometd`` (the Streaming API on the instance URL),
``CHANNEL`` to read another channel, ``MAX_IN_FLIGHT`` events not yet stored.

Each subscriber batch (``cdc_stream.Batch``) becomes one ``SourceBatch``:

- every :class:`~connectors.salesforce.cdc_items.DecodedChange` of a Case or Contact becomes
  ``raw.change_delivery``; a CREATE, UPDATE or UNDELETE gets ``current``, the record as read
  after the event, in one query per batch (per 200 ids): an UPDATE carries only its changed
  fields and the canonical record is whole. The header (``changeOrigin`` with our
  ``client=deskstream``, ``commitUser``) travels unchanged, so our own writes stay echoes;
- a :class:`~connectors.salesforce.cdc_items.Reread` (a gap event, an overflow event, a
  replay id past the 72-hour retention) becomes the records it names, read over REST and sent
  as ``raw.record_delivery(read="reread")``: by id for a gap event, every record of the entity
  modified since the bound otherwise, or all of them when no bound is known. The subscriber
  has already resubscribed from new events, so the stream carries on instead of looping;
- the position is the subscriber's replay position (``{"replay": ...}``, see ``cdc_replay``);
  a batch without one (a re-read) keeps the stored position, so a crash re-reads again rather
  than losing the records.

The subscriber's batch is acked (its flow-control credit returned) when the runtime asks for
the next batch, which it does only after storing this one's position: at most
``MAX_IN_FLIGHT`` events are between Salesforce and the stored position.

A position stored for another transport or channel (the operator switched them) cannot be
replayed on this one: the records modified since its time are re-read and the subscription
starts from new events. Changes made while that re-read runs are left to the reconciliation.

Where a first run starts (no stored position): new events only (``LATEST``, ``-1``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import ClassVar

from connectors.base.source import Position, RawRecord, SourceBatch
from connectors.salesforce.cdc_cometd import CometdSubscriber
from connectors.salesforce.cdc_items import DecodedChange, Reread, StreamItem
from connectors.salesforce.cdc_pubsub import PubSubSubscriber
from connectors.salesforce.cdc_replay import (
    CometdReplay,
    PubSubReplay,
    ReplayPosition,
    replay_position_from_json,
)
from connectors.salesforce.cdc_stream import Batch, ChangeSubscriber, channel_entity
from connectors.salesforce.pubsub_channel import PubSubEndpoint
from connectors.salesforce.raw import change_delivery, record_delivery
from connectors.salesforce.soql_text import api_name
from connectors.salesforce.source_org import SYNCED, SalesforceSource, raw_record

__all__ = ["SalesforceCaseChanges", "SalesforceChanges", "SalesforceContactChanges"]

logger = logging.getLogger(__name__)

#: change types whose event lacks fields the canonical record needs
_NEEDS_CURRENT = frozenset({"CREATE", "UPDATE", "UNDELETE"})


class SalesforceChanges(SalesforceSource):
    """One CDC channel of a Salesforce connector; subclasses name the kind and channel."""

    kind: ClassVar[str]
    default_channel: ClassVar[str]

    def _setup(self) -> None:
        self.channel = self._settings.channel or self.default_channel
        entity = channel_entity(self.channel)
        #: what a re-read without an entity covers: the channel's, or every synced one
        self._entities = (entity,) if entity is not None else SYNCED

    @property
    def transport(self) -> str:
        return self._settings.transport

    # -- the stream ------------------------------------------------------------------------

    async def batches(self, position: Position | None) -> AsyncGenerator[SourceBatch, None]:
        replay = self._replay(position)
        if replay is not None and not self._fits(replay):
            logger.warning(
                "salesforce cdc position is for another transport or channel source=%s "
                "stored=%s configured=%s %s; re-reading since its time, then new events",
                self.name,
                type(replay).__name__,
                self.transport,
                self.channel,
            )
            switched = Reread(None, None, replay.at, "stored position of another transport")
            async for records in self._reread(switched):
                yield SourceBatch(records, position or {}, detail=f"{len(records)} re-read")
            replay = None
        async with self._subscriber() as subscriber:
            stream = subscriber.events(self.channel, replay)
            try:
                async for batch in stream:
                    async with contextlib.aclosing(self._batch(batch, position)) as outs:
                        async for out in outs:
                            yield out
                            if out.position:
                                position = out.position
                    # The runtime asked for the next batch: this one's position is stored.
                    batch.ack()
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()

    @staticmethod
    def _replay(position: Position | None) -> ReplayPosition | None:
        if not position or position.get("replay") is None:
            return None
        return replay_position_from_json(json.dumps(position["replay"]))

    def _fits(self, replay: ReplayPosition) -> bool:
        kind = PubSubReplay if self.transport == "pubsub" else CometdReplay
        return isinstance(replay, kind) and replay.channel == self.channel

    @contextlib.asynccontextmanager
    async def _subscriber(self) -> AsyncIterator[ChangeSubscriber]:
        limit = self._settings.max_in_flight
        if self.transport == "cometd":
            yield CometdSubscriber(self._org.tokens, max_in_flight=limit)
            return
        endpoint = PubSubEndpoint.of(self._org.org, self.connector_id)
        async with endpoint.channel() as channel:
            yield PubSubSubscriber(
                channel, self._org.tokens, max_in_flight=limit, endpoint=endpoint
            )

    async def _batch(
        self, batch: Batch, position: Position | None
    ) -> AsyncGenerator[SourceBatch, None]:
        """The subscriber batch as source batches: its re-reads (by page), then its changes
        with the batch's position."""
        changes: list[DecodedChange] = []
        for item in batch.items:
            if isinstance(item, Reread):
                logger.warning(
                    "salesforce cdc re-read source=%s entity=%s ids=%s since=%s reason=%s",
                    self.name,
                    item.entity,
                    "all" if item.record_ids is None else len(item.record_ids),
                    item.since,
                    item.reason,
                )
                async for records in self._reread(item):
                    yield SourceBatch(records, position or {}, detail=f"{len(records)} re-read")
            elif self._synced(item):
                changes.append(item)
        if batch.position is None:
            return
        records = await self._change_records(changes)
        yield SourceBatch(
            records,
            {"replay": json.loads(batch.position.to_json())},
            position_time=batch.position.at,
            caught_up=not batch.items,  # a keepalive: nothing newer on the channel
            detail=f"{len(records)} changes of {batch.events} events",
        )

    def _synced(self, item: StreamItem) -> bool:
        if isinstance(item, DecodedChange) and item.header.entity in SYNCED:
            return True
        logger.debug("salesforce cdc item not synced source=%s item=%r", self.name, item)
        return False

    async def _change_records(self, changes: list[DecodedChange]) -> list[RawRecord]:
        wanted: dict[str, set[str]] = {}
        for change in changes:
            if change.header.change_type in _NEEDS_CURRENT:
                wanted.setdefault(change.header.entity, set()).add(change.record.record_id)
        current: dict[str, dict[str, object]] = {}
        for sobject, ids in wanted.items():
            current.update(await self._org.by_ids(sobject, ids))
        return [
            raw_record(
                self.connector_id,
                change_delivery(
                    self.connector_id,
                    change,
                    current=current.get(change.record.record_id),
                    source=self.tag,
                ),
            )
            for change in changes
        ]

    # -- re-reads --------------------------------------------------------------------------

    async def _reread(self, item: Reread) -> AsyncIterator[list[RawRecord]]:
        """The records ``item`` names, a list per query answer."""
        entities = (item.entity,) if item.entity is not None else self._entities
        for sobject in entities:
            if sobject not in SYNCED:
                continue
            if item.record_ids is not None:
                found = await self._org.by_ids(sobject, item.record_ids)
                yield self._read_records(sobject, list(found.values()))
                continue
            async for page in self._org.pages(self._window(sobject, item.since)):
                yield self._read_records(sobject, page)

    def _window(self, sobject: str, since: datetime | None) -> str:
        if since is not None:
            return self._org.window(sobject, since)
        fields = self._org.read_fields(sobject)
        # No bound known: every record, as Salesforce's replication guide advises when
        # events were lost and nothing says since when.
        select = ", ".join(dict.fromkeys(["Id", "SystemModstamp", *fields]))
        return f"SELECT {select} FROM {api_name(sobject)} ORDER BY SystemModstamp, Id"  # noqa: S608

    def _read_records(self, sobject: str, records: list[dict[str, object]]) -> list[RawRecord]:
        source = self.tag
        return [
            raw_record(
                self.connector_id,
                record_delivery(self.connector_id, sobject, r, read="reread", source=source),
            )
            for r in records
        ]


class SalesforceCaseChanges(SalesforceChanges):
    kind = "cdc_case"
    default_channel = "/data/CaseChangeEvent"


class SalesforceContactChanges(SalesforceChanges):
    kind = "cdc_contact"
    default_channel = "/data/ContactChangeEvent"
