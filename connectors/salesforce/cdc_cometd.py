"""Change events over the Streaming API (CometD), with the pinned ``aiosfstream-ng`` client.

The client handshakes, subscribes with Salesforce's replay extension and long-polls; when the
server forgets the client (``403::Unknown client``, advice ``handshake``) it handshakes again
and resubscribes on its own. The replay id it resubscribes with comes from :class:`_Cursor`:
the last event that *arrived*, not the last one acked. Arrived events are already on their way
to the caller, so a re-handshake neither loses nor repeats any; after a crash the caller
starts again from its own stored (acked) position.

Start without a stored position: ``-1``, new events only. ``-2`` would replay up to 72 hours
of retained events over records whose current state the backfill reads anyway, sending old
changes downstream as if new; the Pub/Sub subscriber starts at ``LATEST`` for the same reason
("Message Durability", Streaming API Developer Guide,
https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/using_streaming_api_durability.htm).

A stored replay id past the retention is refused with ``400`` "The replayId {id} you provided
was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new
events." ("Streaming API Error Codes",
https://developer.salesforce.com/docs/platform/api-streaming/guide/streaming-error-codes.html;
the exact wording is UNVERIFIED: that page as found lists channel and version errors, the text
is the sandbox's and the client library's ``replay_fallback`` expects a 400): the subscriber
yields a :class:`~connectors.salesforce.cdc_items.Reread` and subscribes again with ``-1``,
whether the refusal comes at the first subscribe or at a resubscribe after a re-handshake.

Flow control: events are taken from the client only while fewer than ``max_in_flight`` are
unacked, and the client prefetches at most ``max_in_flight`` more (``max_pending_count``);
when its queue is full it stops long-polling. One ``/meta/connect`` reply may hold more, so
the bound on what the server has sent is looser than Pub/Sub's. The client is built with
``connection_timeout=0`` (it crashes after a failed ``/meta/connect`` otherwise) and pointed
at the instance URL the token source gives.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiosfstream_ng.auth import AuthenticatorBase
from aiosfstream_ng.client import Client, ReplayMarkerStoragePolicy
from aiosfstream_ng.exceptions import (
    AiosfstreamException,
    AuthenticationError,
    ServerError,
    TransportError,
)
from aiosfstream_ng.replay import ReplayMarker, ReplayMarkerStorage

from connectors.salesforce.cdc_items import Reread, StreamItem, decode_payload
from connectors.salesforce.cdc_replay import CometdReplay, ReplayPosition
from connectors.salesforce.cdc_stream import Batch, InFlight, channel_entity
from connectors.salesforce.session import SalesforceSession, TokenSource
from schemas.errors import ConfigurationError, FatalAPIError, RetriableAPIError

__all__ = ["NEW_EVENTS", "CometdSubscriber"]

logger = logging.getLogger(__name__)

#: Replay option for new events only.
NEW_EVENTS = -1
API_VERSION = "59.0"


class _SessionAuthenticator(AuthenticatorBase):
    """Bearer tokens from the :class:`TokenSource`; a refused one is invalidated."""

    def __init__(self, tokens: TokenSource) -> None:
        super().__init__()
        self._tokens = tokens
        self._used: SalesforceSession | None = None
        self._refused = False

    def __repr__(self) -> str:  # the base class would show the token
        return f"{type(self).__name__}()"

    async def _authenticate(self) -> tuple[int, dict[str, Any]]:
        # The client also calls this after a 403 that is no auth failure (an unknown client):
        # only a 401 makes the token source fetch a new token.
        if self._used is not None and self._refused:
            await self._tokens.invalidate(self._used)
        self._refused = False
        session = await self._tokens.session()
        self._used = session
        body = {
            "access_token": session.access_token,
            "instance_url": session.instance_url,
            "token_type": "Bearer",
        }
        return 200, body

    async def outgoing(self, payload: Any, headers: Any) -> None:
        # The newest token of the source, so a refresh ahead of expiry is used at once.
        session = await self._tokens.session()
        self._used = session
        headers["Authorization"] = f"Bearer {session.access_token}"

    async def incoming(self, payload: Any, headers: Any = None) -> None:
        for message in payload:
            error = str(message.get("error") or "")
            ext = message.get("ext") or {}
            reason = str((ext.get("sfdc") or {}).get("failureReason") or "")
            if error.startswith("401") or reason.startswith("401"):
                self._refused = True


class _Cursor(ReplayMarkerStorage):
    """The replay id a (re)subscribe to ``channel`` sends: after the last arrived event."""

    def __init__(self, channel: str, replay_id: int) -> None:
        super().__init__()
        self.channel = channel
        self.replay_id = replay_id

    async def incoming(self, payload: Any, headers: Any = None) -> None:
        for message in payload:
            if message.get("channel") != self.channel:
                continue
            replay_id = ((message.get("data") or {}).get("event") or {}).get("replayId")
            if isinstance(replay_id, int):
                self.replay_id = replay_id

    async def get_replay_marker(self, subscription: str) -> ReplayMarker | None:
        if subscription != self.channel:
            return None
        return ReplayMarker(date="", replay_id=self.replay_id)

    async def set_replay_marker(self, subscription: str, replay_marker: ReplayMarker) -> None:
        # Positions move in incoming(); the library's own bookkeeping is not used.
        return None


class _Client(Client):
    def __init__(self, tokens: TokenSource, cursor: _Cursor, prefetch: int) -> None:
        super().__init__(
            _SessionAuthenticator(tokens),
            replay=cursor,
            replay_storage_policy=ReplayMarkerStoragePolicy.MANUAL,
            connection_timeout=0,
            max_pending_count=prefetch,
        )

    @staticmethod
    def get_cometd_url(instance_url: str) -> str:
        return f"{instance_url.rstrip('/')}/cometd/{API_VERSION}"


def _replay_refused(error: ServerError) -> bool:
    return error.error_code == 400 and "replayId" in (error.error_message or "")


def _translate(error: AiosfstreamException, channel: str) -> Exception:
    what = f"Salesforce Streaming API subscription to {channel} failed: {error}"
    if isinstance(error, ServerError) and error.error_code == 400:
        return FatalAPIError(
            f"{what}; check the channel name and that Change Data Capture is enabled for its "
            "entity, then restart the subscription"
        )
    if isinstance(error, AuthenticationError):
        return FatalAPIError(f"{what}; check the connector's Salesforce credentials")
    if isinstance(error, ServerError | TransportError):
        return RetriableAPIError(f"{what}; resubscribe from the stored position after a pause")
    return FatalAPIError(f"{what}; restart the subscription, report it if it persists")


class CometdSubscriber:
    """:class:`~connectors.salesforce.cdc_stream.ChangeSubscriber` over the Streaming API."""

    def __init__(self, tokens: TokenSource, *, max_in_flight: int = 100) -> None:
        self._tokens = tokens
        self._max_in_flight = max_in_flight

    async def events(self, channel: str, replay: ReplayPosition | None) -> AsyncIterator[Batch]:
        if replay is not None and (
            not isinstance(replay, CometdReplay) or replay.channel != channel
        ):
            raise ConfigurationError(
                f"the stored replay position {replay!r} is not a Streaming API position of "
                f"{channel}; delete it or configure the channel and transport it was stored for"
            )
        flight = InFlight(self._max_in_flight)
        start = NEW_EVENTS if replay is None else replay.replay_id
        at = None if replay is None else replay.at
        reread: Reread | None = None
        while True:
            cursor = _Cursor(channel, start)
            client = _Client(self._tokens, cursor, self._max_in_flight)
            try:
                await client.open()
                await client.subscribe(channel)
                logger.info("cometd subscribe channel=%s replay=%s", channel, start)
                if reread is not None:
                    yield flight.batch([reread], None, 0)
                    reread = None
                while True:
                    batch = await self._next_batch(client, flight, channel, at)
                    at = batch.position.at if batch.position is not None else at
                    yield batch
            except ServerError as error:
                # At the first subscribe, or at a resubscribe after a re-handshake.
                if not _replay_refused(error) or cursor.replay_id == NEW_EVENTS:
                    raise _translate(error, channel) from error
                logger.warning(
                    "cometd replay id refused channel=%s replay=%s; re-read and go on with -1",
                    channel,
                    cursor.replay_id,
                )
                reread = Reread(
                    channel_entity(channel), None, at, "replay id past retention (400 replayId)"
                )
                start = NEW_EVENTS
            except AiosfstreamException as error:
                raise _translate(error, channel) from error
            finally:
                with contextlib.suppress(AiosfstreamException):
                    await client.close()

    @staticmethod
    async def _next_batch(
        client: _Client, flight: InFlight, channel: str, at: datetime | None
    ) -> Batch:
        await flight.room()
        messages = [await client.receive()]
        # What already waits in the client's queue joins the batch, within the bound.
        while client.pending_count and len(messages) < flight.free:
            messages.append(await client.receive())
        items: list[StreamItem] = []
        for message in messages:
            payload = message["data"]["payload"]
            items += decode_payload(payload)
            millis = payload["ChangeEventHeader"]["commitTimestamp"]
            at = datetime.fromtimestamp(int(millis) / 1000, UTC)
        position = CometdReplay(channel, int(messages[-1]["data"]["event"]["replayId"]), at)
        return flight.batch(items, position, len(messages))
