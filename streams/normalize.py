"""Normalize: one raw delivery becomes canonical events, or a quarantine record with a reason.

Pure logic; the agent in ``app.agents.normalize`` only moves records between topics. A
normaliser that raises anything other than ``SkippableRecordError`` has a bug; the delivery is
quarantined all the same (with the exception named) rather than crashing the worker on a
poison pill and stalling its partition: authenticated deliveries are never lost, and the
quarantine topic keeps the bytes for a replay once the bug is fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from app.errors import SkippableRecordError
from connectors.base.normalize import Normaliser
from schemas.models import Envelope, QuarantineRecord, RawDelivery

__all__ = ["NormalizeOutcome", "event_key", "normalize_delivery"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NormalizeOutcome:
    events: list[Envelope] = field(default_factory=list)
    quarantined: QuarantineRecord | None = None


def event_key(event: Envelope) -> str:
    """The source entity: every event about one record shares a partition, in order."""
    s = event.source
    return f"{s.platform}:{s.connector_id}:{s.entity_type}:{s.entity_id}"


def normalize_delivery(
    delivery: RawDelivery, normaliser: Normaliser, *, now: datetime
) -> NormalizeOutcome:
    try:
        return NormalizeOutcome(events=normaliser.normalise(delivery))
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
    return NormalizeOutcome(
        quarantined=QuarantineRecord(
            delivery=delivery, reason=reason, stage="normalize", quarantined_at=now
        )
    )
