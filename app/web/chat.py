"""The live chat's client-facing endpoints on the worker (``app.agents.chat`` does the rest).

- ``POST /chat/{chat_id}/messages`` ``{"id", "text"?, "attachments"?: [{"url",
  "content_type", "name"?, "size_bytes"?}]}``: a message the customer typed. Answered 202
  only once it is on ``deskstream.chat`` (``acks=all``); ``id`` is the client's own message
  id, so a retried POST is the same event and the desk gets it once. The body is bounded
  in size (413 over ``MAX_MESSAGE_BYTES``) and in time (408 when it has not arrived within
  ``READ_TIMEOUT_SECONDS``); a refusal answered before the whole body has arrived closes
  the connection.
- ``GET /chat/{chat_id}/stream``: Server-Sent Events of what the customer should see (the
  agents' messages with their images and files, the session's start, end and troubles:
  ``streams.chat.client_view``), read from ``deskstream.chat``. Each event's ``id`` is its
  offset in the chat's partition: a client reconnecting with ``Last-Event-ID`` (the header
  browsers send, or the ``last_event_id`` query parameter) gets exactly what came after.
  Without it the stream starts ``DESKSTREAM_CHAT__STREAM_LOOKBACK_SECONDS`` back. The stream
  ends after the session's end; a copy of a record (the topic is at least once) is not shown.

Both need an AI client's ``X-Deskstream-Client`` and ``Authorization: Bearer <key>``, as
``POST /handoff`` does (``app.chat_clients``): 401 without. A chat is its client's: both read
and write the key ``chat_key(client, chat_id)``, so another client naming the same id reaches
a chat of its own (empty; its messages get ``not_forwarded``), never this one.
Every worker serves every chat: the stream reads the chat's partition directly (no consumer
group), whichever worker holds it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import aiohttp.web
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust import web

from app.chat_clients import client_of
from app.ingest import BODY_READ_TIMEOUT_SECONDS, read_bounded
from app.kafka_connection import bootstrap_servers
from app.key_partitioner import partition_of
from app.web.webhooks import refusal
from connectors.base.normalize import event_id
from schemas.codec import decode_as
from schemas.errors import ConfigurationError, IngestError, PayloadTooLargeError, SchemaError
from schemas.models import (
    Actor,
    ActorKind,
    Attachment,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    Source,
)
from streams.chat import CUSTOMER_MESSAGE, chat_key, client_view

if TYPE_CHECKING:
    from app.agents.chat import ChatDesks
    from app.faust_app import Deskstream

__all__ = ["MAX_MESSAGE_BYTES", "READ_TIMEOUT_SECONDS", "customer_message", "register_chat_views"]

#: a message's body must arrive within this (``app.ingest``'s bound for a webhook)
READ_TIMEOUT_SECONDS = BODY_READ_TIMEOUT_SECONDS
#: the largest message body: aiohttp's own default bound, which held before the body was read
#: here; room for ``_MAX_TEXT`` characters however they are escaped (12 bytes each at most:
#: a character outside the BMP as a pair of \u escapes)
MAX_MESSAGE_BYTES = 1024 * 1024

#: a comment line this often keeps proxies from closing an idle stream
_KEEPALIVE_S: Final = 15.0
_MAX_TEXT: Final = 64 * 1024
#: event ids a stream remembers having shown (copies on the topic follow their original soon)
_SHOWN_REMEMBERED: Final = 1000


class BadMessage(ValueError):
    """The request body is wrong; the message names the field."""


def _attachments(value: Any) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 10:
        raise BadMessage("attachments must be a list of at most 10 objects")
    found: list[Attachment] = []
    for index, item in enumerate(value):
        where = f"attachments[{index}]"
        if not isinstance(item, dict):
            raise BadMessage(f"{where} must be an object")
        url, kind = item.get("url"), item.get("content_type")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise BadMessage(f"{where}.url must be an http(s) URL")
        if not isinstance(kind, str) or "/" not in kind:
            raise BadMessage(f"{where}.content_type must be a MIME type such as image/png")
        name = item.get("name") or url.rsplit("/", 1)[-1] or "attachment"
        size = item.get("size_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise BadMessage(f"{where}.size_bytes must be a non-negative integer")
        found.append(Attachment(name=str(name), content_type=kind, size_bytes=size, source_url=url))
    return found


def customer_message(client: str, chat_id: str, body: Any, now: datetime) -> Envelope:
    """The customer's message as a record of the chat; ``BadMessage`` names what is wrong."""
    if not isinstance(body, dict):
        raise BadMessage("the body must be a JSON object")
    message_id = body.get("id")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 256:
        raise BadMessage("id must be the client's message id (1 to 256 characters)")
    text = body.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > _MAX_TEXT):
        raise BadMessage(f"text must be a string of at most {_MAX_TEXT} characters")
    attachments = _attachments(body.get("attachments"))
    if not text and not attachments:
        raise BadMessage("text or attachments is required")
    customer = Actor(kind=ActorKind.CUSTOMER)
    source_event_id = f"{CUSTOMER_MESSAGE}:{chat_id}:{message_id}"
    return Envelope(
        event_id=event_id(client, source_event_id),
        source=Source(
            platform=Platform.AI_AGENT,
            connector_id=client,
            entity_type=EntityType.CASE,
            entity_id=chat_id,
            event_type=CUSTOMER_MESSAGE,
            source_event_id=source_event_id,
            actor=customer,
            occurred_at=now,
        ),
        op=Op.UPDATE,
        changed_fields=["messages"],
        data=Message(
            case_id=chat_id,
            author=customer,
            body_text=text or None,
            public=True,
            created_at=now,
            attachments=attachments,
        ),
        ingested_at=now,
    )


def _sse(offset: int, view: dict[str, Any]) -> bytes:
    data = json.dumps(view, separators=(",", ":"), ensure_ascii=False)
    return f"id: {offset}\nevent: {view['type']}\ndata: {data}\n\n".encode()


def _refused(request: aiohttp.web.Request, error: str, status: int) -> web.Response:
    return cast(web.Response, refusal(error, status, request.content))  # Faust takes aiohttp's


async def _read_body(request: aiohttp.web.Request) -> bytes:
    """A message's body, bounded in size and in time as a webhook's is: a client that
    trickles its bytes does not hold the connection and its buffers for long."""
    try:
        return await read_bounded(
            request.content, request.content_length, MAX_MESSAGE_BYTES, READ_TIMEOUT_SECONDS
        )
    except TimeoutError:
        raise IngestError(
            f"the message did not arrive within {READ_TIMEOUT_SECONDS:g} s; nothing was stored. "
            "Send it again with the same id, the whole body at once",
            status=408,
        ) from None
    except PayloadTooLargeError:
        raise IngestError(
            f"the message is over {MAX_MESSAGE_BYTES} bytes; nothing was stored. Keep its text "
            f"within {_MAX_TEXT} characters and send files as attachments by URL",
            status=413,
        ) from None


def register_chat_views(bundle: Deskstream, desks: ChatDesks) -> None:
    settings = bundle.settings
    chat = bundle.channels.chat
    topic = chat.get_topic_name()

    def client(request: web.Request) -> str | web.Response:
        """The chat client the request authenticates, or the refusal to answer."""
        aio = cast(aiohttp.web.Request, request)
        try:
            found = client_of(settings.connectors, aio.headers)
        except ConfigurationError as exc:
            return _refused(aio, str(exc), 503)
        if found is None:
            return _refused(
                aio,
                "unknown AI client or wrong key: send 'X-Deskstream-Client: <client>' and "
                "'Authorization: Bearer <key>', as for POST /handoff",
                401,
            )
        return found

    @bundle.app.page("/chat/{chat_id}/messages")
    class ChatMessages(web.View):
        async def post(self, request: web.Request, chat_id: str) -> web.Response:
            sender = client(request)
            if not isinstance(sender, str):
                return sender
            aio = cast(aiohttp.web.Request, request)
            try:
                raw = await _read_body(aio)
            except IngestError as exc:
                return _refused(aio, str(exc), exc.status)
            try:
                body = json.loads(raw)
                record = customer_message(sender, chat_id, body, datetime.now(UTC))
            except (ValueError, BadMessage) as exc:
                return self.json({"error": f"message refused: {exc}"}, status=400)
            pending = await chat.send(key=chat_key(sender, chat_id).encode(), value=record)
            try:
                await asyncio.wait_for(pending, timeout=settings.ingest_ack_timeout_seconds)
            except TimeoutError:
                return self.json(
                    {
                        "error": "Kafka did not acknowledge the message in time; send it again "
                        "with the same id"
                    },
                    status=503,
                )
            return self.json({"status": "accepted", "event_id": record.event_id}, status=202)

    @bundle.app.page("/chat/{chat_id}/stream")
    class ChatStream(web.View):
        async def get(self, request: web.Request, chat_id: str) -> Any:
            reader = client(request)
            if not isinstance(reader, str):
                return reader
            aio = cast(aiohttp.web.Request, request)
            resume = aio.headers.get("Last-Event-ID") or aio.query.get("last_event_id")
            if resume is not None and not resume.isdigit():
                return self.json(
                    {"error": "Last-Event-ID must be an event id this stream sent"}, status=400
                )
            start = None if resume is None else int(resume) + 1
            return await _stream(aio, chat_key(reader, chat_id), start)

    async def _stream(
        request: aiohttp.web.Request, scoped: str, start: int | None
    ) -> aiohttp.web.StreamResponse:
        key = scoped.encode()
        tp = TopicPartition(topic, partition_of(key, chat.partitions or settings.partitions))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(settings),
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        response = aiohttp.web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            consumer.assign([tp])
            if start is None:
                since = int((time.time() - settings.chat.stream_lookback_seconds) * 1000)
                found = (await consumer.offsets_for_times({tp: since})).get(tp)
                start = (
                    found.offset if found is not None else (await consumer.end_offsets([tp]))[tp]
                )
            consumer.seek(tp, start)
            await response.prepare(request)
            quiet_since = time.monotonic()
            # The chat topic is at least once (a relay or a notice sent again after a crash):
            # a copy carries its original's event id and is not shown twice.
            shown: OrderedDict[str, None] = OrderedDict()
            while request.transport is not None and not request.transport.is_closing():
                # Short polls: a client gone is noticed within a second (aiohttp does not
                # cancel the handler), not at the next keep-alive.
                batches = await consumer.getmany(tp, timeout_ms=1000)
                if not batches and time.monotonic() - quiet_since >= _KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    quiet_since = time.monotonic()
                for message in batches.get(tp, []):
                    if message.key != key or message.value is None:
                        continue
                    try:
                        record = decode_as(message.value, Envelope)
                    except SchemaError:
                        continue
                    connector = record.source.connector_id
                    ended = desks.ended_text(connector) if connector in desks.ids else ""
                    view = client_view(record, desks=desks.ids, ended_text=ended)
                    if view is None or record.event_id in shown:
                        continue
                    shown[record.event_id] = None
                    if len(shown) > _SHOWN_REMEMBERED:
                        shown.popitem(last=False)
                    await response.write(_sse(message.offset, view))
                    quiet_since = time.monotonic()
                    if view["type"] == "ended":
                        return response
            return response
        finally:
            await consumer.stop()
