"""normalize: ``deskstream.raw`` → ``deskstream.events`` (or ``deskstream.quarantine``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import ack_when_delivered
from app.channels import Channels, inbound
from app.errors import SchemaError
from app.metrics import Metrics
from app.settings import Settings
from connectors.base.normalize import Normaliser
from connectors.base.registry import build_normaliser
from schemas.codec import decode_as
from schemas.models import Platform, QuarantineRecord, RawDelivery
from streams.normalize import NormalizeOutcome, event_key, normalize_delivery

__all__ = ["register_normalize", "unconfigured", "undecodable"]

log = logging.getLogger(__name__)


def undecodable(value: bytes, error: SchemaError, now: datetime) -> QuarantineRecord:
    """A record on ``deskstream.raw`` that is not a RawDelivery (a foreign producer, or a
    newer Deskstream): keep its bytes in quarantine rather than crash on it or drop it."""
    return QuarantineRecord(
        delivery=RawDelivery(
            delivery_id="sha256:" + hashlib.sha256(value).hexdigest(),
            connector_id="(unknown)",
            platform=Platform.GENERIC,
            received_at=now,
            body=value,
            signature_verified=False,
        ),
        reason=f"not a RawDelivery this worker can read: {error}",
        stage="normalize",
        quarantined_at=now,
    )


def unconfigured(delivery: RawDelivery, now: datetime) -> QuarantineRecord:
    """A delivery for a connector this worker does not know (removed from the settings after
    the webhook was accepted, or a worker started with other settings)."""
    return QuarantineRecord(
        delivery=delivery,
        reason=(
            f"connector {delivery.connector_id!r} is not configured on this worker; configure it "
            "on every worker (DESKSTREAM_CONNECTORS__<id>__PLATFORM) and replay the record"
        ),
        stage="normalize",
        quarantined_at=now,
    )


def register_normalize(
    app: faust.App, channels: Channels, metrics: Metrics, settings: Settings
) -> faust.types.AgentT[Any]:
    normalisers: dict[str, Normaliser] = {}

    def normaliser(connector_id: str) -> Normaliser | None:
        found = normalisers.get(connector_id)
        config = settings.connectors.get(connector_id)
        if found is None and config is not None:
            found = normalisers[connector_id] = build_normaliser(connector_id, config)
        return found

    async def _send(outcome: NormalizeOutcome, delivery: RawDelivery) -> list[Awaitable[Any]]:
        sends: list[Awaitable[Any]] = []
        for event in outcome.events:
            sends.append(await channels.events.send(key=event_key(event).encode(), value=event))
            if event.link_id is not None:  # the sync stage meets a link's events in one place
                sends.append(await channels.sync.send(key=event.link_id.encode(), value=event))
            metrics.events_normalized.labels(delivery.platform.value).inc()
        if outcome.quarantined is not None:
            record = outcome.quarantined
            key = record.delivery.connector_id.encode()
            sends.append(await channels.quarantine.send(key=key, value=record))
            metrics.quarantined.labels(record.stage, delivery.platform.value).inc()
            log.warning(
                "delivery quarantined connector=%s delivery=%s reason=%s",
                delivery.connector_id,
                delivery.delivery_id,
                record.reason,
            )
        return sends

    @app.agent(inbound(app, channels.raw), name="normalize")
    async def normalize_raw_deliveries(stream: faust.StreamT[Any]) -> None:
        # StreamT does not declare noack(); the object is always a faust.Stream.
        async for event in cast(faust.Stream[bytes], stream).noack().events():
            now = datetime.now(UTC)
            try:
                delivery = decode_as(event.value, RawDelivery)
            except SchemaError as exc:
                record = undecodable(event.value, exc, now)
                outcome = NormalizeOutcome(quarantined=record)
                ack_when_delivered(app, event, await _send(outcome, record.delivery))
                continue
            chosen = normaliser(delivery.connector_id)
            if chosen is None:
                outcome = NormalizeOutcome(quarantined=unconfigured(delivery, now))
            else:
                outcome = normalize_delivery(delivery, chosen, now=now)
            ack_when_delivered(app, event, await _send(outcome, delivery))

    return normalize_raw_deliveries
