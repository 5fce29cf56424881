"""The Pub/Sub API: change events over gRPC (``eventbus.v1.PubSub``) on its own port.

Every call must carry the ``accesstoken``, ``instanceurl`` and ``tenantid`` metadata of a live
session. ``Subscribe`` is a bidirectional stream: the first ``FetchRequest`` names the topic
and the start (``LATEST``, ``EARLIEST`` or ``CUSTOM`` after a replay id); each request grants
``num_requested`` more events (at most 100 at a time), and the server never sends more than
granted. Each ``FetchResponse`` says how many granted events are still owed
(``pending_num_requested``); when there is nothing to send for a while, an empty response
carries the latest replay id as a keepalive. Payloads are Avro binary written with the schema
``GetSchema`` returns. Failures are gRPC statuses with Salesforce's ``error-code`` trailer and
an ``rpcId:`` in the message ("Handle Errors", Pub/Sub API Developer Guide,
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/handling-errors.html). A topic
of an object that publishes no change events (``/data/CaseCommentChangeEvent``) is refused
like an unknown one, ``NOT_FOUND`` with ``sfdc.platform.eventbus.grpc.topic.not.found``
(UNVERIFIED: no official page names the status or code for this case).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from grpc import aio

from connectors.salesforce.pubsub import pubsub_api_pb2 as pb
from connectors.salesforce.pubsub import pubsub_api_pb2_grpc as pb_grpc
from sandboxes.salesforce.auth import Session
from sandboxes.salesforce.cdc import ALL_CHANGES, ChangeEvent, channel_entities
from sandboxes.salesforce.state import Org

__all__ = ["PubSubService", "decode_replay_id", "encode_replay_id"]

logger = logging.getLogger(__name__)

_PREFIX = "sfdc.platform.eventbus.grpc."
MAX_PER_REQUEST = 100


def encode_replay_id(replay_id: int) -> bytes:
    return replay_id.to_bytes(8, "big")


def decode_replay_id(raw: bytes) -> int | None:
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


class _Refused(Exception):
    def __init__(self, status: grpc.StatusCode, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = _PREFIX + code
        self.message = message


@dataclass
class _Stream:
    topic: str
    entities: frozenset[str]
    cursor: int
    pending: int
    error: _Refused | None = None


class PubSubService(pb_grpc.PubSubServicer):
    def __init__(self, org: Org) -> None:
        self.org = org
        #: Subscribe streams open now, and opened since start (a cancelled call's stream can
        #: outlive it until its next keepalive, so a count of open ones cannot tell a new
        #: subscription from an old one still closing)
        self.streams = 0
        self.opened = 0
        self.delivered = 0

    # -- shared ---------------------------------------------------------------------------

    async def _abort(self, context: aio.ServicerContext[object, object], refused: _Refused) -> None:
        rpc_id = str(uuid.uuid4())
        logger.info("pubsub refused code=%s rpc_id=%s", refused.code, rpc_id)
        await context.abort(
            refused.status,
            f"{refused.message} rpcId: {rpc_id}",
            trailing_metadata=(("error-code", refused.code), ("rpc-id", rpc_id)),
        )

    def _session(self, context: aio.ServicerContext[object, object]) -> Session:
        metadata = {key.lower(): value for key, value in (context.invocation_metadata() or ())}
        token, instance, tenant = (
            str(metadata.get(name, "")) for name in ("accesstoken", "instanceurl", "tenantid")
        )
        if not token or not instance or not tenant:
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                "service.auth.headers.invalid",
                "Authentication headers are missing or blank.",
            )
        session = self.org.oauth.authenticate(token)
        expected = self.org.context.base_url.rstrip("/")
        org_ok = tenant in (self.org.org_id, self.org.org_id[:15])
        if session is None or not org_ok or (expected and instance.rstrip("/") != expected):
            raise _Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                "service.auth.error",
                "An authentication exception occurred. Provide valid "
                "authentication via metadata headers.",
            )
        return session

    def _topic(self, name: str) -> frozenset[str]:
        if not name:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                "topic.validation.empty",
                "The topic name is blank.",
            )
        entities = channel_entities(name)
        if entities is None:
            raise _Refused(
                grpc.StatusCode.NOT_FOUND, "topic.not.found", f"The topic {name} does not exist."
            )
        return entities

    # -- unary RPCs -----------------------------------------------------------------------

    async def GetTopic(
        self, request: pb.TopicRequest, context: aio.ServicerContext[object, object]
    ) -> pb.TopicInfo:
        try:
            self._session(context)
            entities = self._topic(request.topic_name)
        except _Refused as refused:
            await self._abort(context, refused)
            raise
        schema_id = ""
        if request.topic_name != ALL_CHANGES:
            (entity,) = entities
            schema_id = self.org.bus.layouts[entity].schema_id
        return pb.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=self.org.org_id,
            can_publish=False,
            can_subscribe=True,
            schema_id=schema_id,
            rpc_id=str(uuid.uuid4()),
        )

    async def GetSchema(
        self, request: pb.SchemaRequest, context: aio.ServicerContext[object, object]
    ) -> pb.SchemaInfo:
        try:
            self._session(context)
            if not request.schema_id:
                raise _Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "schema.validation.failed",
                    "The schema ID is blank.",
                )
            for layout in self.org.bus.layouts.values():
                if layout.schema_id == request.schema_id:
                    return pb.SchemaInfo(
                        schema_json=layout.schema_json,
                        schema_id=layout.schema_id,
                        rpc_id=str(uuid.uuid4()),
                    )
            raise _Refused(
                grpc.StatusCode.NOT_FOUND,
                "schema.meta.permission",
                f"The schema {request.schema_id} is unknown or not accessible.",
            )
        except _Refused as refused:
            await self._abort(context, refused)
            raise

    # -- Subscribe ------------------------------------------------------------------------

    def _start(self, first: pb.FetchRequest) -> _Stream:
        entities = self._topic(first.topic_name)
        bus = self.org.bus
        if first.replay_preset == pb.EARLIEST:
            cursor = bus.earliest_position()
        elif first.replay_preset == pb.CUSTOM:
            if not first.replay_id:
                raise _Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "subscription.fetch.replayid.validation.failed",
                    "The Replay ID validation failed: CUSTOM needs a replay ID.",
                )
            replay = decode_replay_id(first.replay_id)
            if replay is None or not bus.is_valid_replay_id(replay):
                raise _Refused(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "subscription.fetch.replayid.corrupted",
                    "The Replay ID validation failed.",
                )
            cursor = replay
        else:
            cursor = bus.latest_replay_id
        return _Stream(first.topic_name, entities, cursor, self._granted(first))

    @staticmethod
    def _granted(request: pb.FetchRequest) -> int:
        if request.num_requested <= 0:
            raise _Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                "subscription.fetch.requested.events.invalid",
                "The number of requested events must be greater than zero.",
            )
        return min(request.num_requested, MAX_PER_REQUEST)

    async def _read(
        self, requests: AsyncIterator[pb.FetchRequest], stream: _Stream, wake: asyncio.Event
    ) -> None:
        try:
            async for request in requests:
                if request.topic_name and request.topic_name != stream.topic:
                    raise _Refused(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "subscription.fetch.topic.mismatch",
                        "The topic name changed within the subscription.",
                    )
                stream.pending += self._granted(request)
                wake.set()
        except _Refused as refused:
            stream.error = refused
            wake.set()

    def _response(
        self, stream: _Stream, events: list[ChangeEvent], rpc_id: str
    ) -> pb.FetchResponse:
        bus = self.org.bus
        consumer = [
            pb.ConsumerEvent(
                event=pb.ProducerEvent(
                    id=event.uuid,
                    schema_id=bus.layouts[event.entity].schema_id,
                    payload=bus.avro_payload(event),
                ),
                replay_id=encode_replay_id(event.replay_id),
            )
            for event in events
        ]
        if events:
            stream.cursor = events[-1].replay_id
        elif not bus.after(stream.cursor, stream.entities, limit=1):
            # Nothing undelivered for this topic: the stream's position is the bus tip.
            stream.cursor = max(stream.cursor, bus.latest_replay_id)
        stream.pending -= len(events)
        self.delivered += len(events)
        return pb.FetchResponse(
            events=consumer,
            latest_replay_id=encode_replay_id(stream.cursor),
            rpc_id=rpc_id,
            pending_num_requested=stream.pending,
        )

    async def Subscribe(
        self,
        request_iterator: AsyncIterator[pb.FetchRequest],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[pb.FetchResponse]:
        try:
            session = self._session(context)
            requests = aiter(request_iterator)
            first = await anext(requests, None)
            if first is None:
                return
            stream = self._start(first)
        except _Refused as refused:
            await self._abort(context, refused)
            return
        rpc_id = str(uuid.uuid4())
        bus = self.org.bus
        wake = bus.listener()
        reader = asyncio.create_task(self._read(requests, stream, wake))
        keepalive = self.org.config.pubsub_keepalive_s
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        self.streams += 1
        self.opened += 1
        logger.info("pubsub subscribe topic=%s user=%s", stream.topic, session.user_id)
        try:
            while True:
                if stream.error is not None:
                    await self._abort(context, stream.error)
                    return
                wake.clear()
                if stream.pending > 0:
                    events = bus.after(
                        stream.cursor, stream.entities, limit=min(stream.pending, MAX_PER_REQUEST)
                    )
                    if events:
                        yield self._response(stream, events, rpc_id)
                        quiet_since = loop.time()
                        continue
                remaining = keepalive - (loop.time() - quiet_since)
                if remaining <= 0:
                    yield self._response(stream, [], rpc_id)
                    quiet_since = loop.time()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), remaining)
        finally:
            self.streams -= 1
            reader.cancel()
            bus.release(wake)

    # -- not offered by the sandbox -------------------------------------------------------

    async def _unsupported(self, context: aio.ServicerContext[object, object], rpc: str) -> None:
        # Change events are published by record changes, never by clients; managed
        # subscriptions are a beta the sandbox does not emulate.
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{rpc} is not available in the Deskstream Salesforce sandbox",
        )

    async def Publish(
        self, request: pb.PublishRequest, context: aio.ServicerContext[object, object]
    ) -> pb.PublishResponse:
        await self._unsupported(context, "Publish")
        raise AssertionError("unreachable: abort raises")

    async def PublishStream(
        self,
        request_iterator: AsyncIterator[pb.PublishRequest],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[pb.PublishResponse]:
        await self._unsupported(context, "PublishStream")
        yield pb.PublishResponse()  # pragma: no cover - never reached, makes a generator

    async def ManagedSubscribe(
        self,
        request_iterator: AsyncIterator[pb.ManagedFetchRequest],
        context: aio.ServicerContext[object, object],
    ) -> AsyncIterator[pb.ManagedFetchResponse]:
        await self._unsupported(context, "ManagedSubscribe")
        yield pb.ManagedFetchResponse()  # pragma: no cover - never reached
