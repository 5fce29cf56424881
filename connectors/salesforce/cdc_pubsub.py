"""Change events over the Pub/Sub API: a ``Subscribe`` stream under flow control.

"Subscribe RPC Method" and "Flow Control" (Pub/Sub API Developer Guide,
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/flow-control.html): each
``FetchRequest`` asks for ``num_requested`` more events and the server sends no more than
asked. The first request asks for the free credit of :class:`InFlight`; every
``batch.ack()`` asks for as many events as it acked, so events delivered or requested but
unacked never exceed ``max_in_flight``. The stream starts ``CUSTOM`` after the stored replay
id, or ``LATEST`` when there is none (new events only; records that changed before are the
backfill's job). Calls carry the ``accesstoken``, ``instanceurl`` and ``tenantid`` headers
("Supported Authentication Methods",
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/supported-auth.html).

Errors ("Handle Errors" and "Retry Long-Lived RPC Calls After an Error Occurs",
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/retry-rpc-calls.html): the
trailer ``error-code`` ``sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted``
"means that the specified Replay ID value is invalid. One possible cause is that it's an old
Replay ID outside the 72-hour retention period": the subscriber yields a
:class:`~connectors.salesforce.cdc_items.Reread` and carries on from ``LATEST``.
``UNAUTHENTICATED`` invalidates the session and resubscribes once with a new token. Other
failures end the iteration as :class:`RetriableAPIError` (the service was unavailable or the
stream broke) or :class:`FatalAPIError` (the request is wrong): the caller restarts
``events()`` from its stored position under the project's retry policy.

Production endpoint: ``api.pubsub.salesforce.com:7443`` over TLS ("Pub/Sub API Endpoint",
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/pub-sub-endpoints.html);
the channel is injected (``connectors.salesforce.pubsub_channel`` makes it), so tests use the
sandbox's own TLS port and CA. With the endpoint given, a failed TLS handshake is one clear
``ConfigurationError`` naming it and the setting to change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
from grpc import aio

from connectors.salesforce.cdc_avro import Metadata, SchemaCache
from connectors.salesforce.cdc_events import from_pubsub
from connectors.salesforce.cdc_items import Reread, StreamItem, decode_payload
from connectors.salesforce.cdc_replay import PubSubReplay, ReplayPosition
from connectors.salesforce.cdc_stream import Batch, InFlight, channel_entity
from connectors.salesforce.pubsub import pubsub_api_pb2 as pb
from connectors.salesforce.pubsub import pubsub_api_pb2_grpc as pb_grpc
from connectors.salesforce.pubsub_channel import PubSubEndpoint
from connectors.salesforce.session import SalesforceSession, TokenSource
from schemas.errors import ConfigurationError, FatalAPIError, RetriableAPIError

__all__ = ["EXPIRED_REPLAY_CODE", "PubSubSubscriber"]

logger = logging.getLogger(__name__)

EXPIRED_REPLAY_CODE = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
_RETRIABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


def _metadata(session: SalesforceSession) -> Metadata:
    return (
        ("accesstoken", session.access_token),
        ("instanceurl", session.instance_url),
        ("tenantid", session.org_id),
    )


def _error_code(error: aio.AioRpcError) -> str:
    return str(dict(error.trailing_metadata() or ()).get("error-code", ""))


def _translate(error: aio.AioRpcError, channel: str) -> Exception:
    # details() holds Salesforce's message and rpcId, never the token.
    what = f"Salesforce Pub/Sub subscription to {channel} failed: {error.code().name} " + (
        f"{_error_code(error)} {error.details() or ''}".strip()
    )
    if error.code() in _RETRIABLE:
        return RetriableAPIError(f"{what}; resubscribe from the stored position after a pause")
    return FatalAPIError(
        f"{what}; check the topic name, the integration user's access to it and the "
        "connector's Salesforce credentials, then restart the subscription"
    )


class _Requests:
    """The request side of one ``Subscribe`` call: the first request, then one per ack.

    An iterator class, not an async generator: gRPC reads it from its own task and a
    cancelled call would leave a generator that cannot be closed.
    """

    def __init__(self, flight: InFlight, channel: str, start: PubSubReplay | None) -> None:
        self._flight = flight
        self._channel = channel
        self._start = start
        self._grants: asyncio.Queue[int] = asyncio.Queue()
        self._first = True

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> pb.FetchRequest:
        if not self._first:
            return pb.FetchRequest(topic_name=self._channel, num_requested=await self._grants.get())
        self._first = False
        count = await self._flight.room()
        # Acks from now on are grants on this stream; the first request covers the rest.
        self._flight.on_release(self._grants.put_nowait)
        if self._start is None:
            return pb.FetchRequest(
                topic_name=self._channel, replay_preset=pb.LATEST, num_requested=count
            )
        return pb.FetchRequest(
            topic_name=self._channel,
            replay_preset=pb.CUSTOM,
            replay_id=self._start.replay_id,
            num_requested=count,
        )

    def close(self) -> None:
        self._flight.on_release(None)


class PubSubSubscriber:
    """:class:`~connectors.salesforce.cdc_stream.ChangeSubscriber` over the Pub/Sub API."""

    def __init__(
        self,
        channel: aio.Channel,
        tokens: TokenSource,
        *,
        max_in_flight: int = 100,
        endpoint: PubSubEndpoint | None = None,
    ) -> None:
        self._stub = pb_grpc.PubSubStub(channel)
        self._endpoint = endpoint
        self._tokens = tokens
        self._max_in_flight = max_in_flight
        self.schemas = SchemaCache(self._stub)

    async def _metadata(self) -> Metadata:
        return _metadata(await self._tokens.session())

    async def events(self, channel: str, replay: ReplayPosition | None) -> AsyncIterator[Batch]:
        if replay is not None and (
            not isinstance(replay, PubSubReplay) or replay.channel != channel
        ):
            raise ConfigurationError(
                f"the stored replay position {replay!r} is not a Pub/Sub position of {channel}; "
                "delete it or configure the channel and transport it was stored for"
            )
        flight = InFlight(self._max_in_flight)
        position: PubSubReplay | None = replay
        reread: Reread | None = None
        reauthenticated = False
        while True:
            session = await self._tokens.session()
            requests = _Requests(flight, channel, position)
            call = self._stub.Subscribe(requests, metadata=tuple(_metadata(session)))
            logger.info(
                "pubsub subscribe channel=%s start=%s",
                channel,
                "LATEST" if position is None else position.replay_id.hex(),
            )
            try:
                if reread is not None:
                    # The new stream is asked for before the signal: what changes while the
                    # caller re-reads arrives as events.
                    yield flight.batch([reread], None, 0)
                    reread = None
                async for response in call:
                    reauthenticated = False
                    batch, position = await self._batch(flight, channel, response, position)
                    if batch is not None:
                        yield batch
                raise RetriableAPIError(
                    f"Salesforce closed the Pub/Sub subscription to {channel}; resubscribe "
                    "from the stored position"
                )
            except aio.AioRpcError as error:
                code = _error_code(error)
                if code == EXPIRED_REPLAY_CODE and position is not None:
                    logger.warning(
                        "pubsub replay id expired channel=%s replay_id=%s; re-read and go on "
                        "from LATEST",
                        channel,
                        position.replay_id.hex(),
                    )
                    reread = Reread(
                        channel_entity(channel),
                        None,
                        position.at,
                        "replay id past retention (subscription.fetch.replayid.corrupted)",
                    )
                    position = None
                    continue
                if error.code() == grpc.StatusCode.UNAUTHENTICATED and not reauthenticated:
                    reauthenticated = True
                    await self._tokens.invalidate(session)
                    continue
                refused = self._endpoint.refused(error) if self._endpoint else None
                if refused is not None:
                    raise refused from error
                raise _translate(error, channel) from error
            finally:
                call.cancel()
                requests.close()

    async def _batch(
        self,
        flight: InFlight,
        channel: str,
        response: pb.FetchResponse,
        position: PubSubReplay | None,
    ) -> tuple[Batch | None, PubSubReplay | None]:
        """The response's batch (None for a keepalive that moves nothing) and the position."""
        if not response.events:
            # A keepalive: nothing for this topic up to latest_replay_id.
            latest = response.latest_replay_id
            if not latest or (position is not None and position.replay_id == latest):
                return None, position
            moved = PubSubReplay(channel, latest, None if position is None else position.at)
            return flight.batch([], moved, 0), moved
        metadata = await self._metadata()
        items: list[StreamItem] = []
        at: datetime | None = None
        for consumer_event in response.events:
            schema, record = await self.schemas.decode(consumer_event.event, metadata)
            payload = from_pubsub(record, schema)
            items += decode_payload(payload)
            millis = payload["ChangeEventHeader"]["commitTimestamp"]
            at = datetime.fromtimestamp(int(millis) / 1000, UTC)
        last = PubSubReplay(channel, response.events[-1].replay_id, at)
        return flight.batch(items, last, len(response.events)), last
