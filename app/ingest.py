"""Webhook ingest: authenticate a delivery, write it to ``deskstream.raw``, only then say 2xx.

Order of checks, cheapest refusal first: the connector must exist (404) before the body is
read; the body must fit the limit (413) before it is verified; the signature must hold (401)
before anything is stored; Kafka must acknowledge with ``acks=all`` (else 503, so the platform
retries) before the platform hears "accepted". An authenticated body that cannot be parsed is
still accepted and stored: normalize quarantines it with a reason, so nothing authenticated is
lost and the platform does not retry it forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Protocol

from aiokafka.errors import KafkaError

from app.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    IngestError,
    PayloadTooLargeError,
    UnknownConnectorError,
)
from app.metrics import Metrics
from app.settings import Settings
from connectors.base.ingest import IngestConnector, WebhookRequest
from connectors.base.registry import build_ingest_connector
from schemas.models import Platform, RawDelivery

__all__ = ["BodyStream", "Publish", "WebhookIngest", "read_limited"]

log = logging.getLogger(__name__)

#: Writes one raw delivery under a key and returns once Kafka acknowledged it.
Publish = Callable[[str, RawDelivery], Awaitable[None]]


class BodyStream(Protocol):
    async def readany(self) -> bytes: ...


async def read_limited(stream: BodyStream, declared_length: int | None, limit: int) -> bytes:
    """Read a request body, refusing it as soon as it is known to exceed ``limit`` bytes."""
    if declared_length is not None and declared_length > limit:
        raise PayloadTooLargeError(_too_large(declared_length, limit))
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.readany():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"body of at least {size} bytes exceeds the {limit}-byte limit; nothing was stored. "
        "Raise DESKSTREAM_WEBHOOK_MAX_BODY_BYTES if such deliveries are expected"
    )


class WebhookIngest:
    def __init__(
        self, settings: Settings, publish: Publish, metrics: Metrics, *, timeout: float
    ) -> None:
        self._settings = settings
        self._publish = publish
        self._metrics = metrics
        self._timeout = timeout
        self._connectors: dict[str, IngestConnector] = {}

    def connector(self, connector_id: str) -> IngestConnector:
        """The configured connector; built once, so secrets files are read at first use."""
        found = self._connectors.get(connector_id)
        if found is not None:
            return found
        config = self._settings.connectors.get(connector_id)
        if config is None:
            self._metrics.webhooks.labels("(unknown)", "unknown_connector").inc()
            raise UnknownConnectorError(
                f"no connector {connector_id!r} is configured; check the webhook URL on the "
                "platform, or add DESKSTREAM_CONNECTORS__<id>__PLATFORM to the worker"
            )
        connector = build_ingest_connector(connector_id, config)
        self._connectors[connector_id] = connector
        return connector

    async def receive(
        self,
        connector_id: str,
        headers: Mapping[str, str],
        body: BodyStream,
        declared_length: int | None,
        received_at: datetime,
    ) -> RawDelivery:
        """One HTTP delivery, start to end: raise an IngestError to refuse it."""
        self.connector(connector_id)  # 404 before reading a body nobody will use
        try:
            raw = await read_limited(body, declared_length, self._settings.webhook_max_body_bytes)
        except PayloadTooLargeError as exc:
            self._count_refusal(connector_id, exc)
            raise
        request = WebhookRequest(
            connector_id=connector_id,
            headers={k.lower(): v for k, v in headers.items()},
            body=raw,
            received_at=received_at,
        )
        return await self.accept(request)

    async def accept(self, request: WebhookRequest) -> RawDelivery:
        """Verify and durably store one delivery; raise an IngestError to refuse it."""
        started = time.perf_counter()
        connector_id = request.connector_id
        try:
            connector = self.connector(connector_id)
            connector.verify(request)
        except ConfigurationError as exc:
            # Our mistake, not the sender's: 503 makes the platform retry after the fix.
            self._metrics.webhooks.labels(connector_id, "misconfigured").inc()
            raise IngestError(str(exc), status=503) from exc
        except IngestError as exc:
            self._count_refusal(connector_id, exc)
            raise
        delivery = RawDelivery(
            delivery_id=connector.delivery_id(request),
            connector_id=connector_id,
            platform=Platform(connector.platform),
            received_at=request.received_at,
            headers=connector.kept(request),
            body=request.body,
            content_type=request.header("content-type"),
            signature_verified=True,
        )
        await self._store(connector.partition_key(request), delivery)
        self._metrics.webhooks.labels(connector_id, "accepted").inc()
        self._metrics.webhook_ack_seconds.labels(connector_id).observe(
            time.perf_counter() - started
        )
        return delivery

    def _count_refusal(self, connector_id: str, exc: IngestError) -> None:
        outcome = {401: "unauthorized", 404: "unknown_connector", 413: "too_large"}
        if exc.status != 404:  # unknown connectors are counted under one label above
            self._metrics.webhooks.labels(connector_id, outcome.get(exc.status, "refused")).inc()

    async def _store(self, key: str, delivery: RawDelivery) -> None:
        try:
            await asyncio.wait_for(self._publish(key, delivery), timeout=self._timeout)
        except (TimeoutError, KafkaError) as exc:
            self._metrics.webhooks.labels(delivery.connector_id, "unavailable").inc()
            log.warning(
                "webhook not stored connector=%s delivery=%s error=%s",
                delivery.connector_id,
                delivery.delivery_id,
                type(exc).__name__,
            )
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge the delivery within {self._timeout:g} s "
                f"({type(exc).__name__}); nothing was accepted, so the platform will retry. "
                "Check the brokers (`deskstream kafka status`)"
            ) from exc
