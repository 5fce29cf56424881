"""``POST /webhooks/{connector_id}``: HTTP in front of ``app.ingest.WebhookIngest``.

aiohttp (Faust's web driver) has no body read timeout of its own; ``WebhookIngest`` bounds
the read. A refusal before the whole body was read closes the connection: aiohttp would
otherwise keep reading the rest of it for up to ten more seconds before the next request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import aiohttp.web
from aiokafka.errors import KafkaConnectionError
from faust import web
from faust.exceptions import NotReady

from app.ingest import WebhookIngest
from schemas.codec import encode
from schemas.errors import IngestError
from schemas.models import RawDelivery

if TYPE_CHECKING:
    from app.faust_app import Deskstream

__all__ = ["BODY_LEFT_UNREAD", "register_webhooks"]

#: refusals that leave the body unread: the connection is closed rather than drained
BODY_LEFT_UNREAD = frozenset({408, 413})


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

    @bundle.app.page("/webhooks/{connector_id}")
    class WebhookView(web.View):
        async def post(self, request: web.Request, connector_id: str) -> web.Response:
            received_at = datetime.now(UTC)
            aio: Any = request  # Faust's aiohttp driver passes the aiohttp request itself
            try:
                delivery = await ingest.receive(
                    connector_id, aio.headers, aio.content, aio.content_length, received_at
                )
            except IngestError as exc:
                response = self.json({"error": str(exc)}, status=exc.status)
                if exc.status in BODY_LEFT_UNREAD:
                    # Faust's aiohttp driver returns the aiohttp response itself.
                    cast(aiohttp.web.StreamResponse, response).force_close()
                return response
            return self.json({"status": "accepted", "delivery_id": delivery.delivery_id})

    return ingest
