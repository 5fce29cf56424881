"""Webhook ingest: authenticate a delivery, write it to ``deskstream.raw``, only then say 2xx.

Order of checks, cheapest refusal first: the connector must exist (404) before the body is
read; the body must arrive in time (408) and fit the limit (413) before it is verified; the
signature must hold (401) before anything is stored; Kafka must acknowledge with ``acks=all``
(else 503, so the platform retries) before the platform hears "accepted". An authenticated body
that cannot be parsed is still accepted and stored: normalize quarantines it with a reason, so
nothing authenticated is lost and the platform does not retry it forever.

Who gets which answer: unauthenticated garbage 4xx; authenticated garbage 2xx (and quarantine
later); our own trouble 503, so the platform keeps the delivery and retries: Kafka not
acknowledging, or a connector without its secret. Whatever the bytes, every accepted delivery
can be stored: headers are decoded defensively, the ids taken from the body are bounded and
made safe text, and the body limit plus the record around it is the producer's and the
topics' message size (``app.topics.max_message_bytes``).

Secrets are read per delivery (``ConnectorSettings.signing_secrets``, re-read only when their
file changed), so a rotation needs no restart, and both secrets are accepted while both are
configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from aiokafka.errors import KafkaError

from app.give_way import WaitingDeliveries
from app.metrics import Metrics
from app.settings import Settings
from app.webhook_watch import WebhookWatch
from connectors.base.ingest import (
    MAX_KEPT_HEADER_CHARS,
    IngestConnector,
    WebhookRequest,
    decode_headers,
)
from connectors.base.registry import build_ingest_connector, delivery_mode
from schemas.errors import (
    BrokerUnavailableError,
    ConfigurationError,
    IngestError,
    PayloadTooLargeError,
    UnknownConnectorError,
)
from schemas.models import Platform, RawDelivery
from schemas.text import safe_text

__all__ = [
    "BODY_READ_TIMEOUT_SECONDS",
    "BodyStream",
    "Check",
    "Publish",
    "WebhookIngest",
    "read_bounded",
    "read_limited",
]

log = logging.getLogger(__name__)

#: Writes one raw delivery under a key and returns once Kafka acknowledged it.
Publish = Callable[[str, RawDelivery], Awaitable[None]]
#: Refuses an authenticated body before it is stored (raise an IngestError, e.g. a 422).
Check = Callable[[WebhookRequest], None]


#: A body must arrive within this: a platform posts a megabyte in well under a second, a
#: slow-loris sender trickles bytes to hold the connection (and its buffers) forever.
BODY_READ_TIMEOUT_SECONDS = 10.0
#: Ids and keys taken from a body longer than this are replaced by their hash: they are
#: written into every record about the delivery, and the body may be hostile.
_MAX_ID_CHARS = 256


def _bounded(text: str) -> str:
    """``text`` as an id every encoder carries, at most ``_MAX_ID_CHARS`` long."""
    text = safe_text(text)
    if len(text) <= _MAX_ID_CHARS:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:64]}...sha256:{digest}"


def _unavailable(exc: ConfigurationError) -> IngestError:
    # Our mistake, not the sender's: 503 makes the platform keep the delivery and retry it
    # after the fix. The message names settings and files, never a secret's value.
    return IngestError(f"{exc} (answered 503: the platform will retry)", status=503)


class BodyStream(Protocol):
    """A request body as aiohttp's ``StreamReader`` hands it out."""

    async def readany(self) -> bytes: ...

    def is_eof(self) -> bool:
        """True once the whole body is buffered: reading it cannot wait."""
        ...


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


async def read_bounded(
    stream: BodyStream, declared_length: int | None, limit: int, within_s: float
) -> bytes:
    """``read_limited`` within ``within_s`` seconds (``TimeoutError`` past it). A body the
    parser has whole (a delivery's usual case) is read with no timer: nothing is left to wait
    for, and a timer set and cancelled per request is the cost saved."""
    bound: AbstractAsyncContextManager[Any] = (
        contextlib.nullcontext() if stream.is_eof() else asyncio.timeout(within_s)
    )
    async with bound:
        return await read_limited(stream, declared_length, limit)


def _too_large(size: int, limit: int) -> str:
    return (
        f"body of at least {size} bytes exceeds the {limit}-byte limit; nothing was stored. "
        "Raise DESKSTREAM_WEBHOOK_MAX_BODY_BYTES if such deliveries are expected"
    )


class WebhookIngest:
    def __init__(
        self,
        settings: Settings,
        publish: Publish,
        metrics: Metrics,
        *,
        timeout: float,
        read_timeout: float = BODY_READ_TIMEOUT_SECONDS,
        watch: WebhookWatch | None = None,
        waiting: WaitingDeliveries | None = None,
    ) -> None:
        self._settings = settings
        #: deliveries being answered: the batch agents give way to them (``app.give_way``)
        self.waiting = WaitingDeliveries() if waiting is None else waiting
        self._publish = publish
        self._metrics = metrics
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._watch = watch
        self._connectors: dict[str, IngestConnector] = {}
        self._accepted: dict[str, tuple[Any, Any]] = {}

    @property
    def settings(self) -> Settings:
        return self._settings

    def connector(self, connector_id: str) -> IngestConnector:
        """The configured connector, built once (a build that fails is tried again on the
        next delivery); its secrets are read per delivery, in ``accept``."""
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
        if delivery_mode(config) == "polling":
            self._metrics.webhooks.labels(connector_id, "polling_only").inc()
            raise UnknownConnectorError(
                f"connector {connector_id!r} is configured for polling only (MODE=polling) "
                "and takes no webhooks; remove the webhook on the platform, or set its MODE "
                "to both"
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
        *,
        check: Check | None = None,
    ) -> RawDelivery:
        """One HTTP delivery, start to end: raise an IngestError to refuse it."""
        with self.waiting:  # the batch agents give way meanwhile (app.give_way)
            try:
                self.connector(connector_id)  # 404 before reading a body nobody will use
            except ConfigurationError as exc:
                self._metrics.webhooks.labels(connector_id, "misconfigured").inc()
                raise _unavailable(exc) from exc
            limit = self._settings.webhook_max_body_bytes
            try:
                raw = await read_bounded(body, declared_length, limit, self._read_timeout)
            except PayloadTooLargeError as exc:
                self._count_refusal(connector_id, exc)
                raise
            except TimeoutError:
                error = IngestError(
                    f"the body did not arrive within {self._read_timeout:g} s; nothing was stored. "
                    "Send the whole body at once (a platform retries such deliveries)",
                    status=408,
                )
                self._count_refusal(connector_id, error)
                raise error from None
            decoded, repaired = decode_headers(headers)
            request = WebhookRequest(
                connector_id=connector_id,
                headers=decoded,
                body=raw,
                received_at=received_at,
                repaired_headers=repaired,
            )
            return await self.accept(request, check=check)

    async def accept(self, request: WebhookRequest, *, check: Check | None = None) -> RawDelivery:
        """Verify, ``check`` and durably store one delivery; raise an IngestError to refuse
        it. A check runs only on authenticated bodies: strangers learn nothing from it."""
        started = time.perf_counter()
        connector_id = request.connector_id
        try:
            connector = self.connector(connector_id)
            config = self._settings.connectors[connector_id]
            connector.verify(request, config.signing_secrets())
            if check is not None:
                check(request)
        except ConfigurationError as exc:
            self._metrics.webhooks.labels(connector_id, "misconfigured").inc()
            raise _unavailable(exc) from exc
        except IngestError as exc:
            self._count_refusal(connector_id, exc)
            raise
        content_type = request.header("content-type")
        delivery = RawDelivery(
            delivery_id=_bounded(connector.delivery_id(request)),
            connector_id=connector_id,
            platform=Platform(connector.platform),
            received_at=request.received_at,
            headers=connector.kept(request),
            body=request.body,
            content_type=content_type[:MAX_KEPT_HEADER_CHARS] if content_type else None,
            signature_verified=True,
        )
        await self._store(_bounded(connector.partition_key(request)), delivery)
        accepted, ack_seconds = self._accepted_metrics(connector_id)
        accepted.inc()
        if self._watch is not None:
            self._watch.delivered(connector_id)
        ack_seconds.observe(time.perf_counter() - started)
        return delivery

    def _accepted_metrics(self, connector_id: str) -> tuple[Any, Any]:
        """The connector's accepted counter and ack histogram (labelled once: ``labels``
        costs more than the increment on every delivery)."""
        found = self._accepted.get(connector_id)
        if found is None:
            found = self._accepted[connector_id] = (
                self._metrics.webhooks.labels(connector_id, "accepted"),
                self._metrics.webhook_ack_seconds.labels(connector_id),
            )
        return found

    def _count_refusal(self, connector_id: str, exc: IngestError) -> None:
        outcome = {
            401: "unauthorized",
            404: "unknown_connector",
            408: "timeout",
            413: "too_large",
            422: "invalid",
        }
        if exc.status != 404:  # unknown connectors are counted under one label above
            self._metrics.webhooks.labels(connector_id, outcome.get(exc.status, "refused")).inc()

    async def _store(self, key: str, delivery: RawDelivery) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._publish(key, delivery)
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
