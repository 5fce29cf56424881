"""``POST /webhooks/{connector_id}``: HTTP in front of ``app.ingest.WebhookIngest``.

aiohttp (Faust's web driver) has no body read timeout of its own; ``WebhookIngest`` bounds
the read. A refusal answered before the whole body has arrived closes the connection: aiohttp
would otherwise keep reading the rest of it for up to ten more seconds before the next
request.

The route is a plain aiohttp handler on Faust's own aiohttp application (same port, same
server), not a Faust ``View``: a view adds its dispatch and Faust's web sensors to every
delivery, about 23 µs of CPU (``docs/performance.md``, "Webhook deliveries without Faust's
view"), and Faust's ``faust_http_*`` metrics no longer count webhooks. Every answer this
handler gives is counted in ``deskstream_webhooks_total`` by its outcome, an unexpected
failure (500) as ``error``; accepted deliveries are timed in
``deskstream_webhook_ack_seconds``. aiohttp's own answers (400 for a malformed request, 405
for another method) are not counted there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp.web
from aiokafka.errors import KafkaConnectionError
from faust.exceptions import NotReady
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from app.ingest import WebhookIngest
from schemas.codec import encode
from schemas.errors import ConfigurationError, IngestError
from schemas.models import RawDelivery

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["refusal", "register_webhooks"]

log = logging.getLogger(__name__)


def raw_publisher(app: Any, raw_topic: str) -> Callable[[str, RawDelivery], Awaitable[None]]:
    """Publish a delivery on the raw topic and return once Kafka acknowledged it (acks=all)."""

    async def publish(key: str, delivery: RawDelivery) -> None:
        # Straight to Faust's aiokafka producer (its acks=all, linger and partitioner): Faust's
        # Topic.send would add a FutureMessage, callbacks and sensors to every delivery. The
        # first await queues the record; the second waits for the acks=all answer.
        try:
            producer = app.producer._ensure_producer()
        except NotReady as exc:  # a delivery in the moments before the producer has started
            raise KafkaConnectionError("the worker's Kafka producer has not started yet") from exc
        acknowledged = await producer.send(raw_topic, encode(delivery), key=key.encode())
        await acknowledged

    return publish


#: the bytes Faust's views answer with, which senders have always seen. Made once:
#: ``json.dumps`` with ``separators`` builds a new encoder on every call (2.2 µs against 1.4).
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _json(answer: dict[str, Any], *, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        text=_encode(answer), status=status, content_type="application/json"
    )


def refusal(error: str, status: int, content: aiohttp.StreamReader) -> aiohttp.web.Response:
    """``{"error": ...}`` with ``status``. A refusal answered before the whole body has
    arrived (too large, too slow, or refused before reading) closes the connection: draining
    the rest could take aiohttp ten more seconds. A body the parser has whole leaves nothing
    to drain, and the connection stays."""
    response = _json({"error": error}, status=status)
    if not content.is_eof():
        response.force_close()
    return response


def register_webhooks(bundle: Deskstream) -> WebhookIngest:
    settings = bundle.settings
    raw_topic = bundle.channels.raw.get_topic_name()
    app: Any = bundle.app

    ingest = WebhookIngest(
        settings,
        raw_publisher(app, raw_topic),
        bundle.metrics,
        timeout=settings.ingest_ack_timeout_seconds,
        watch=bundle.watch,
        waiting=bundle.waiting,
    )

    async def post_webhook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received_at = datetime.now(UTC)
        connector_id = request.match_info["connector_id"]
        try:
            delivery = await ingest.receive(
                connector_id, request.headers, request.content, request.content_length, received_at
            )
        except IngestError as exc:
            return refusal(str(exc), exc.status, request.content)
        except Exception as exc:  # a bug of ours: counted and answered, never silent
            return _failed(connector_id, exc, request.content)
        return _json({"status": "accepted", "delivery_id": delivery.delivery_id})

    def _failed(
        connector_id: str, exc: Exception, content: aiohttp.StreamReader
    ) -> aiohttp.web.Response:
        known = connector_id if connector_id in settings.connectors else "(unknown)"
        bundle.metrics.webhooks.labels(known, "error").inc()
        log.error("webhook failed connector=%s error=%s", known, type(exc).__name__, exc_info=exc)
        return refusal(
            f"the worker failed on this delivery ({type(exc).__name__}), so the platform will "
            "retry it; a copy already stored is dropped as a duplicate. The worker's log has "
            "the traceback (logger app.web.webhooks)",
            500,
            content,
        )

    web = bundle.app.web
    if not isinstance(web, AiohttpWeb):  # the worker sets no other driver (app.faust_app)
        raise ConfigurationError(
            f"the worker's web server is {type(web).__name__}, not Faust's aiohttp driver: "
            "/webhooks needs it. Leave Faust's `web` setting at its aiohttp:// default"
        )
    web.web_app.router.add_post("/webhooks/{connector_id}", post_webhook)
    return ingest
