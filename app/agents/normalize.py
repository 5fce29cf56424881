"""normalize: ``deskstream.raw`` → ``deskstream.events`` (or ``deskstream.quarantine``).

An event already sent for the same raw key is dropped before the canonical topic
(``app.agents.dedupe``): downstream sees each event once.

Raw records are taken in batches (``noack_take``: up to ``BATCH_MAX`` taken from the stream's
queue at once, or what arrived within ``BATCH_WAIT_S``: ``app.batch_stream``), worked through
giving way to webhooks waiting for their answer (``app.give_way``); the records a batch causes
go out as one Kafka batch per partition (``app.agents.batch_send``), its ids are remembered
once all of them are acknowledged, and its raw records are acked, in reading order, once those
changelog records are acknowledged too. Per record, Faust's ``Topic.send``, a task and a gather
cost more than normalising the event. A revocation waits for the batch in hand
(``app.agents.acks.Revocations``).

The agent never stops on a record: whatever one delivery does (undecodable, unconfigured, a
normaliser bug, text Avro cannot carry, an event over the message size), the outcome is
encoded and sized before anything is sent (``streams.normalize.encode_outcome``), and an
exception nobody foresaw still ends as a minimal quarantine record. A crash here would
restart the worker onto the same record and stall its partition for good.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import Revocations, ack_all_when_delivered
from app.agents.batch_send import BatchSend, TableChangelog
from app.agents.dedupe import EventDedupe, SentIds
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.give_way import WaitingDeliveries, giving_way
from app.metrics import Metrics
from app.settings import Settings
from app.topics import max_message_bytes
from connectors.base.normalize import Normaliser
from connectors.base.registry import build_normaliser
from schemas.codec import decode_as
from schemas.errors import SchemaError
from schemas.models import Platform, QuarantineRecord, RawDelivery
from streams.config import SyncConfig
from streams.flows.handoff import rehomed
from streams.normalize import (
    EncodedOutcome,
    NormalizeOutcome,
    encode_outcome,
    event_key,
    normalize_delivery,
    quarantine,
)

__all__ = ["RecordNormaliser", "register_normalize", "unconfigured", "undecodable"]

log = logging.getLogger(__name__)

#: raw records normalised together: their outputs go out as one Kafka batch per partition
BATCH_MAX = 500
#: how long a batch waits to fill: the most a lone webhook's events wait for company
BATCH_WAIT_S = 0.01


def _opaque(value: bytes, now: datetime) -> RawDelivery:
    """A raw record's bytes as a delivery of unknown origin, for quarantine."""
    return RawDelivery(
        delivery_id="sha256:" + hashlib.sha256(value).hexdigest(),
        connector_id="(unknown)",
        platform=Platform.GENERIC,
        received_at=now,
        body=value,
        signature_verified=False,
    )


def undecodable(value: bytes, error: SchemaError, now: datetime) -> QuarantineRecord:
    """A record on ``deskstream.raw`` that is not a RawDelivery (a foreign producer, or a
    newer Deskstream): keep its bytes in quarantine rather than crash on it or drop it."""
    return quarantine(_opaque(value, now), f"not a RawDelivery this worker can read: {error}", now)


def unconfigured(delivery: RawDelivery, now: datetime) -> QuarantineRecord:
    """A delivery for a connector this worker does not know (removed from the settings after
    the webhook was accepted, or a worker started with other settings)."""
    reason = (
        f"connector {delivery.connector_id!r} is not configured on this worker; configure it "
        "on every worker (DESKSTREAM_CONNECTORS__<id>__PLATFORM) and replay the record"
    )
    return quarantine(delivery, reason, now)


class RecordNormaliser:
    """One raw record's bytes → what normalize writes for it, encoded and known to fit: the
    agent's own work per record, everything but Kafka (``bench.normalize_work`` times it
    alone, against the bare consume→produce loop)."""

    def __init__(self, settings: Settings, rules: SyncConfig | None = None) -> None:
        self._settings = settings
        self._rules = rules
        self._normalisers: dict[str, Normaliser] = {}
        self._max_bytes = max_message_bytes(settings)

    def _normaliser(self, connector_id: str) -> Normaliser | None:
        found = self._normalisers.get(connector_id)
        config = self._settings.connectors.get(connector_id)
        if found is None and config is not None:
            found = self._normalisers[connector_id] = build_normaliser(connector_id, config)
        return found

    def outcome_of(self, value: bytes, now: datetime) -> tuple[NormalizeOutcome, RawDelivery]:
        try:
            delivery = decode_as(value, RawDelivery)
        except SchemaError as exc:
            record = undecodable(value, exc, now)
            return NormalizeOutcome(quarantined=record), record.delivery
        chosen = self._normaliser(delivery.connector_id)
        if chosen is None:
            return NormalizeOutcome(quarantined=unconfigured(delivery, now)), delivery
        outcome = normalize_delivery(delivery, chosen, now=now)
        if self._rules is not None and outcome.events:  # a hand-off in place: the record's link
            events = [rehomed(event, self._rules) for event in outcome.events]
            outcome = dataclasses.replace(outcome, events=events)
        return outcome, delivery

    def encoded(self, value: bytes, where: str) -> tuple[EncodedOutcome, RawDelivery]:
        """``where`` names the raw record (topic, partition, offset) for a quarantine reason."""
        now = datetime.now(UTC)
        limit = self._max_bytes
        try:
            outcome, delivery = self.outcome_of(value, now)
            return encode_outcome(
                outcome, delivery, max_bytes=limit, now=now, where=where
            ), delivery
        except Exception as exc:  # a bug of ours: the record is kept all the same, minimal
            log.exception("normalize failed on a record %s", where)
            delivery = _opaque(value, now)
            reason = (
                f"normalize failed with {type(exc).__name__}; this is a Deskstream bug: report "
                "it with this record and replay it once fixed"
            )
            fitted = encode_outcome(
                NormalizeOutcome(quarantined=quarantine(delivery, reason, now)),
                delivery,
                max_bytes=limit,
                now=now,
                where=where,
            )
            return fitted, delivery


def register_normalize(
    app: faust.App,
    channels: Channels,
    metrics: Metrics,
    settings: Settings,
    recent: faust.types.TableT[bytes, bytes],
    waiting: WaitingDeliveries,
    revocations: Revocations,
    rules: SyncConfig | None = None,
) -> faust.types.AgentT[Any]:
    producer = lambda: cast(Any, app.producer)._ensure_producer()  # noqa: E731  (aiokafka's)
    dedupe = EventDedupe(
        recent,
        metrics,
        changelog=TableChangelog(recent, producer),
        window_seconds=settings.event_dedupe_window_seconds,
        max_ids=settings.event_dedupe_max_ids,
    )
    deduping = settings.event_dedupe_window_seconds > 0
    encoded = RecordNormaliser(settings, rules).encoded

    def _add(
        out: BatchSend, outcome: EncodedOutcome, delivery: RawDelivery, counts: Counter[str]
    ) -> None:
        # Values go out already encoded: encode_outcome checked that each one fits, and the
        # bytes of an event are the same on the events and the sync topic.
        if outcome.repaired:
            log.warning(
                "text made safe connector=%s delivery=%s fields=%s reason=lone surrogates "
                "(not encodable as UTF-8) replaced by U+FFFD",
                delivery.connector_id,
                delivery.delivery_id,
                ",".join(outcome.repaired[:20]),
            )
        for event, data in outcome.events:
            out.add(events_topic, event_key(event).encode(), data)
            if event.link_id is not None:  # the sync stage meets a link's events in one place
                out.add(sync_topic, event.link_id.encode(), data)
        counts[delivery.platform.value] += len(outcome.events)
        if outcome.quarantined is not None:
            record, data = outcome.quarantined
            out.add(quarantine_topic, record.delivery.connector_id.encode(), data)
            metrics.quarantined.labels(record.stage, delivery.platform.value).inc()
            log.warning(
                "delivery quarantined connector=%s delivery=%s reason=%s",
                record.delivery.connector_id,
                record.delivery.delivery_id,
                record.reason,
            )

    events_topic = channels.events.get_topic_name()
    sync_topic = channels.sync.get_topic_name()
    quarantine_topic = channels.quarantine.get_topic_name()
    out = BatchSend(producer)
    positions = Positions(app, metrics, "normalize", [channels.raw.get_topic_name()])

    batch_fill = metrics.batch_inputs.labels("normalize")  # labelled once: it is per batch
    in_hand = revocations.in_hand("normalize")

    async def normalize_batch(batch: list[faust.EventT[Any]]) -> None:
        read: list[faust.EventT[Any]] = []
        sent: list[SentIds] = []
        counts: Counter[str] = Counter()
        # The loop turns within the batch (app.give_way): a whole batch at once would hold it
        # for tens of milliseconds, and every webhook's answer behind it.
        async for event in giving_way(batch, waiting):
            if not positions.received(event):
                continue  # records before it were skipped: read again from the first one
            read.append(event)
            message = event.message
            where = (
                f"on {message.topic} partition {message.partition} offset "
                f"{message.offset} (kept there for the raw topic's retention)"
            )
            outcome, delivery = encoded(event.value, where)
            # The raw record's time, not the clock: reading it again decides the same way.
            now = int(message.timestamp or time.time())
            if deduping and outcome.events:
                key: bytes = event.key or b""
                platform = delivery.platform.value
                kept, digests = dedupe.fresh(key, outcome.events, now=now, platform=platform)
                if len(kept) != len(outcome.events):  # a copy dropped
                    outcome = dataclasses.replace(outcome, events=kept)
                if digests or positions.may_have_run(event):
                    # Read again with only copies: its key's state goes to the changelog again
                    # (a RocksDB store may hold ids its changelog lacks: app.agents.dedupe).
                    sent.append(SentIds(key, message.partition, digests, now, platform, event))
            _add(out, outcome, delivery, counts)
        for platform, count in counts.items():
            metrics.events_normalized.labels(platform).inc(count)
        sends: list[Awaitable[Any]] = list(await out.send())
        if deduping:
            # Remembered only once every record of the batch is acknowledged; the raw records
            # are acked only once the changelog records are acknowledged too, and those of
            # earlier batches whose events this one dropped as copies in flight.
            sends += dedupe.remember_batch(sent, sends)
        ack_all_when_delivered(app, read, sends)

    @app.agent(inbound(app, channels.raw), name="normalize")
    async def normalize_raw_deliveries(stream: faust.StreamT[Any]) -> None:
        # StreamT does not declare noack_take(); the object is always a faust.Stream. The
        # batch's events are acked here, once their outputs are in Kafka, never by Faust.
        batches = cast(faust.Stream[bytes], stream).noack_take(BATCH_MAX, within=BATCH_WAIT_S)
        async for batch in batches:
            batch_fill.observe(len(batch))
            with in_hand:  # a revocation waits for it (app.agents.acks.Revocations)
                await normalize_batch(cast(list[faust.EventT[Any]], batch))

    return normalize_raw_deliveries
