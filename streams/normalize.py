"""Normalize: one raw delivery becomes canonical events, or a quarantine record with a reason.

Pure logic; the agent in ``app.agents.normalize`` only moves records between topics. A
delivery a backfill wrote (``BACKFILL_HEADER``) gives events marked ``source.snapshot``. A
normaliser that raises anything other than ``SkippableRecordError`` has a bug; the delivery is
quarantined all the same (with the exception named) rather than crashing the worker on a
poison pill and stalling its partition: authenticated deliveries are never lost, and the
quarantine topic keeps the bytes for a replay once the bug is fixed.

What the agent writes is encoded here, before anything is sent (``encode_outcome``), because a
record the producer or the broker refuses would stall the partition just the same:

- an event whose text UTF-8 cannot carry (a lone surrogate) is written with that text made
  safe (U+FFFD), and the fields that were changed are named in a log line;
- an event that still cannot be encoded, or is over the message size, sends the delivery to
  quarantine instead, with the reason;
- a quarantine record always fits: over the message size, its body is cut to a prefix and the
  reason says so, with the full size, the sha256 and where the whole delivery is on the raw
  topic; one that cannot be encoded at all becomes a minimal record (ids, sizes, reason).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from connectors.base.normalize import Normaliser
from connectors.base.source import BACKFILL_HEADER
from schemas.codec import encode
from schemas.errors import SchemaError, SkippableRecordError
from schemas.models import Envelope, QuarantineRecord, RawDelivery
from schemas.text import safe_record, safe_text

__all__ = [
    "MAX_REASON_CHARS",
    "EncodedOutcome",
    "NormalizeOutcome",
    "encode_outcome",
    "event_key",
    "fit_quarantine",
    "normalize_delivery",
    "quarantine",
]

log = logging.getLogger(__name__)

#: Reasons quote what was wrong (pydantic echoes input values): bounded, so they fit too.
MAX_REASON_CHARS = 4000
#: Room left in a cut quarantine record for the note that says it was cut.
_NOTE_ROOM_BYTES = 2048


@dataclass(frozen=True, slots=True)
class NormalizeOutcome:
    events: list[Envelope] = field(default_factory=list)
    quarantined: QuarantineRecord | None = None


@dataclass(frozen=True, slots=True)
class EncodedOutcome:
    """What the agent writes for one delivery, serialized and known to fit."""

    events: list[tuple[Envelope, bytes]] = field(default_factory=list)
    quarantined: tuple[QuarantineRecord, bytes] | None = None
    #: fields of the events whose text was made safe, for the log line
    repaired: list[str] = field(default_factory=list)


def event_key(event: Envelope) -> str:
    """The source entity: every event about one record shares a partition, in order."""
    s = event.source
    return f"{s.platform}:{s.connector_id}:{s.entity_type}:{s.entity_id}"


def quarantine(delivery: RawDelivery, reason: str, now: datetime) -> QuarantineRecord:
    """A normalize-stage quarantine record, its reason bounded."""
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + " [reason cut]"
    return QuarantineRecord(delivery=delivery, reason=reason, stage="normalize", quarantined_at=now)


def normalize_delivery(
    delivery: RawDelivery, normaliser: Normaliser, *, now: datetime
) -> NormalizeOutcome:
    try:
        events = normaliser.normalise(delivery)
        if delivery.headers.get(BACKFILL_HEADER):
            events = [_snapshot(event) for event in events]
        return NormalizeOutcome(events=events)
    except SkippableRecordError as exc:
        reason = exc.reason
    except Exception as exc:  # a normaliser bug must not stall the partition
        log.exception(
            "normaliser failed connector=%s delivery=%s",
            delivery.connector_id,
            delivery.delivery_id,
        )
        reason = (
            f"the {delivery.platform} normaliser failed with {type(exc).__name__}: {exc}. "
            "This is a Deskstream bug: report it with this record; the raw delivery is kept "
            "here and can be replayed once fixed"
        )
    return NormalizeOutcome(quarantined=quarantine(delivery, reason, now))


def _snapshot(event: Envelope) -> Envelope:
    """An event a backfill read: its commands give way to live ones in the sinks."""
    return event.model_copy(update={"source": event.source.model_copy(update={"snapshot": True})})


def _encode_event(event: Envelope, repaired: list[str]) -> tuple[Envelope, bytes]:
    try:
        return event, encode(event)
    except SchemaError:
        safe, paths = safe_record(event)
        if not paths:
            raise  # not a text problem: the caller quarantines the delivery with the reason
        repaired += paths
        return safe, encode(safe)


def encode_outcome(
    outcome: NormalizeOutcome,
    delivery: RawDelivery,
    *,
    max_bytes: int,
    now: datetime,
    where: str,
) -> EncodedOutcome:
    """``outcome`` serialized, every value at most ``max_bytes``; ``where`` names the raw
    record (topic, partition, offset) for a quarantine reason to point at."""
    if outcome.quarantined is not None:
        return EncodedOutcome(quarantined=fit_quarantine(outcome.quarantined, max_bytes, where))
    repaired: list[str] = []
    try:
        events = [_encode_event(event, repaired) for event in outcome.events]
    except SchemaError as exc:
        reason = (
            f"the events normalised from this delivery cannot be written ({exc}); this is a "
            "Deskstream bug: report it with this record and replay it once fixed"
        )
        return EncodedOutcome(
            quarantined=fit_quarantine(quarantine(delivery, reason, now), max_bytes, where)
        )
    too_big = [(event, len(data)) for event, data in events if len(data) > max_bytes]
    if too_big:
        event, size = too_big[0]
        reason = (
            f"event {event.event_id} normalised from this delivery is {size} bytes, over the "
            f"{max_bytes}-byte message size; raise DESKSTREAM_WEBHOOK_MAX_BODY_BYTES (the "
            "message size follows it; then `deskstream topics create` for the topic configs) "
            "and replay this record"
        )
        return EncodedOutcome(
            quarantined=fit_quarantine(quarantine(delivery, reason, now), max_bytes, where)
        )
    return EncodedOutcome(events=events, repaired=repaired)


def fit_quarantine(
    record: QuarantineRecord, max_bytes: int, where: str
) -> tuple[QuarantineRecord, bytes]:
    """``record`` and its encoding, made to fit ``max_bytes`` without losing the fact."""
    record, _ = safe_record(record)  # headers, ids and reasons may quote unsafe text
    try:
        data = encode(record)
    except SchemaError as exc:
        return _minimal(record, f"it could not be encoded ({type(exc).__name__})", where)
    if len(data) <= max_bytes:
        return record, data
    body = record.delivery.body
    keep = max(0, len(body) - (len(data) - max_bytes) - _NOTE_ROOM_BYTES)
    note = (
        f" [The body, {len(body)} bytes with sha256 {hashlib.sha256(body).hexdigest()}, is cut "
        f"to its first {keep} bytes so this record fits the {max_bytes}-byte message size; the "
        f"whole delivery is {where}.]"
    )
    cut = record.model_copy(
        update={
            "delivery": record.delivery.model_copy(update={"body": body[:keep]}),
            "reason": record.reason + note,
        }
    )
    data = encode(cut)
    if len(data) <= max_bytes:
        return cut, data
    return _minimal(record, f"it is {len(data)} bytes even with its body cut", where)


def _minimal(record: QuarantineRecord, problem: str, where: str) -> tuple[QuarantineRecord, bytes]:
    """The least a quarantine record says: which delivery, how big, why, where it is."""
    delivery = record.delivery
    body = delivery.body
    minimal = QuarantineRecord(
        delivery=RawDelivery(
            delivery_id=safe_text(delivery.delivery_id)[:200],
            connector_id=safe_text(delivery.connector_id)[:200],
            platform=delivery.platform,
            received_at=delivery.received_at,
            body=b"",
            signature_verified=delivery.signature_verified,
        ),
        reason=(
            f"{safe_text(record.reason)[:MAX_REASON_CHARS]} [This record is minimal because "
            f"{problem}: the body, {len(body)} bytes with sha256 "
            f"{hashlib.sha256(body).hexdigest()}, and the headers are left out; the whole "
            f"delivery is {where}.]"
        ),
        stage=record.stage,
        quarantined_at=record.quarantined_at,
    )
    return minimal, encode(minimal)
