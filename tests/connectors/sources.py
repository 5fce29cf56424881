"""Helpers of the pull-based sources' tests: one whole read, and what a webhook receiver got
as the raw deliveries webhook ingest would have written."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connectors.base.source import Position, Source, SourceBatch
from sandboxes.base import LoopbackReceiver
from schemas.models import RawDelivery

__all__ = ["delivered", "polled", "read"]


async def read(source: Source, position: Position | None) -> list[SourceBatch]:
    """Batches up to the first that has caught up (one whole poll)."""
    batches = []
    iterator = source.batches(position)
    async for batch in iterator:
        batches.append(batch)
        if batch.caught_up:
            break
    await iterator.aclose()  # type: ignore[attr-defined]
    return batches


def polled(batches: list[SourceBatch]) -> list[RawDelivery]:
    return [r.delivery for b in batches for r in b.records]


def delivered(
    receiver: LoopbackReceiver,
    connector_id: str,
    platform: str,
    delivery_id: Callable[[dict[str, Any]], str],
) -> list[RawDelivery]:
    """Every webhook the receiver got, as a verified raw delivery of ``connector_id``."""
    return [
        RawDelivery(
            delivery_id=delivery_id(json.loads(d.body)),
            connector_id=connector_id,
            platform=platform,
            received_at=datetime.now(UTC),
            headers={},
            body=d.body,
            content_type="application/json",
            signature_verified=True,
        )
        for d in receiver.deliveries
    ]
