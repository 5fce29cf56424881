"""Streaming API: change events over CometD (Bayeux long-polling) at ``POST /cometd/<version>``.

Handles ``/meta/handshake``, ``/meta/subscribe`` (with the ``replay`` extension: ``-1`` new
events only, ``-2`` everything retained, or a replay id to resume after), ``/meta/connect``
(held until events arrive or the advised timeout passes; the first connect after a handshake
answers at once), ``/meta/unsubscribe`` and ``/meta/disconnect``. Errors use Bayeux's
``"<code>::<message>"`` form with Salesforce's texts, so clients' retry logic (re-auth on 401
and 403, re-handshake on ``403::Unknown client``, fall back on ``400`` replay errors) runs.

Only channels of objects that publish change events exist (``catalog.CHANGE_EVENT_OBJECTS``):
subscribing to ``/data/CaseCommentChangeEvent`` gets the documented ``400 The channel you
requested to subscribe to does not exist {channel_name}`` ("Streaming API Error Codes",
https://developer.salesforce.com/docs/atlas.en-us.api_streaming.meta/api_streaming/streaming_error_codes.htm).
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandboxes.salesforce.cdc import channel_entities
from sandboxes.salesforce.state import Org

__all__ = ["CometdServer"]

logger = logging.getLogger(__name__)

Message = dict[str, Any]

_CLIENT_ID_CHARS = string.ascii_lowercase + string.digits

_INVALID_REPLAY = (
    "400::The replayId {{{replay}}} you provided was invalid.  Please provide a valid ID, -2 "
    "to replay all events, or -1 to replay only new events."
)


@dataclass
class _Client:
    client_id: str
    user_id: str
    signal: asyncio.Event
    last_seen: float
    #: channel -> replay id of the last event delivered (or the starting point).
    cursors: dict[str, int] = field(default_factory=dict)
    connected: bool = False
    polling: int = 0
    closed: bool = False


def _reply(message: Message, **fields: Any) -> Message:
    reply: Message = {"channel": message.get("channel")}
    if "id" in message:
        reply["id"] = message["id"]
    reply.update(fields)
    return reply


class CometdServer:
    def __init__(self, org: Org) -> None:
        self.org = org
        self.clients: dict[str, _Client] = {}
        self.delivered = 0
        self._closing = False
        self._rng = org.context.derive_rng("salesforce:cometd")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/cometd/{version:\\d+\\.\\d}", self.handle),
            web.post("/cometd/{version:\\d+\\.\\d}/", self.handle),
        ]

    @property
    def _advice(self) -> Message:
        return {"interval": 0, "timeout": self.org.config.cometd_timeout_ms, "reconnect": "retry"}

    # -- lifecycle ------------------------------------------------------------------------

    def close_all(self) -> None:
        """Drop every client (reset) and release held long-polls."""
        for client in list(self.clients.values()):
            self._drop(client)

    async def shutdown(self, _: web.Application | None = None) -> None:
        self._closing = True
        self.close_all()

    def _drop(self, client: _Client) -> None:
        client.closed = True
        client.signal.set()
        self.org.bus.release(client.signal)
        self.clients.pop(client.client_id, None)

    def _prune(self) -> None:
        now = self.org.clock.monotonic()
        for client in list(self.clients.values()):
            if (
                not client.polling
                and now - client.last_seen > self.org.config.cometd_max_interval_s
            ):
                logger.info("cometd client expired client_id=%s", client.client_id)
                self._drop(client)

    # -- the endpoint ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response(
                [{"successful": False, "error": "400::Invalid JSON"}], status=400
            )
        messages = [
            m for m in (payload if isinstance(payload, list) else [payload]) if isinstance(m, dict)
        ]
        session = self.org.oauth.session_from_header(request.headers.get("Authorization"))
        if session is None:
            return web.json_response([self._auth_failure(m) for m in messages], status=401)
        self._prune()
        replies: list[Message] = []
        for message in messages:
            channel = message.get("channel")
            if channel == "/meta/handshake":
                replies.append(self._handshake(message, session.user_id))
            elif channel == "/meta/connect":
                replies.extend(await self._connect(message))
            elif channel == "/meta/subscribe":
                replies.append(self._subscribe(message))
            elif channel == "/meta/unsubscribe":
                replies.append(self._unsubscribe(message))
            elif channel == "/meta/disconnect":
                replies.append(self._disconnect(message))
            else:
                replies.append(_reply(message, successful=False, error="403::Publish denied"))
        return web.json_response(replies)

    @staticmethod
    def _auth_failure(message: Message) -> Message:
        if message.get("channel") == "/meta/handshake":
            return _reply(
                message,
                successful=False,
                error="403::Handshake denied",
                ext={"sfdc": {"failureReason": "401::Authentication invalid"}},
                advice={"reconnect": "none"},
            )
        return _reply(
            message,
            successful=False,
            error="401::Authentication invalid",
            advice={"reconnect": "none"},
        )

    def _client(self, message: Message) -> _Client | None:
        client = self.clients.get(str(message.get("clientId", "")))
        if client is not None:
            client.last_seen = self.org.clock.monotonic()
        return client

    @staticmethod
    def _unknown_client(message: Message) -> Message:
        return _reply(
            message,
            clientId=message.get("clientId"),
            successful=False,
            error="403::Unknown client",
            advice={"reconnect": "handshake", "interval": 0},
        )

    def _handshake(self, message: Message, user_id: str) -> Message:
        client_id = "".join(self._rng.choice(_CLIENT_ID_CHARS) for _ in range(28))
        self.clients[client_id] = _Client(
            client_id, user_id, self.org.bus.listener(), self.org.clock.monotonic()
        )
        logger.info("cometd handshake client_id=%s user=%s", client_id, user_id)
        return _reply(
            message,
            version="1.0",
            minimumVersion="1.0",
            clientId=client_id,
            supportedConnectionTypes=["long-polling"],
            successful=True,
            ext={"replay": True, "payload.format": True},
            advice=self._advice,
        )

    def _subscribe(self, message: Message) -> Message:
        client = self._client(message)
        if client is None:
            return self._unknown_client(message)
        channel = str(message.get("subscription", ""))
        base = {"clientId": client.client_id, "subscription": channel}
        if channel_entities(channel) is None:
            return _reply(
                message,
                **base,
                successful=False,
                error=f"400::The channel you requested to subscribe to does not "
                f"exist {{{channel}}}",
            )
        replays = (message.get("ext") or {}).get("replay") or {}
        replay = replays.get(channel, -1) if isinstance(replays, dict) else -1
        bus = self.org.bus
        if replay == -1:
            cursor = bus.latest_replay_id
        elif replay == -2:
            cursor = bus.earliest_position()
        elif (
            isinstance(replay, int)
            and not isinstance(replay, bool)
            and bus.is_valid_replay_id(replay)
        ):
            cursor = replay
        else:
            logger.info("cometd replay refused client_id=%s replay=%s", client.client_id, replay)
            return _reply(
                message, **base, successful=False, error=_INVALID_REPLAY.format(replay=replay)
            )
        client.cursors[channel] = cursor
        client.signal.set()  # a held connect may now have replayed events to deliver
        logger.info(
            "cometd subscribe client_id=%s channel=%s replay=%s", client.client_id, channel, replay
        )
        return _reply(message, **base, successful=True)

    def _unsubscribe(self, message: Message) -> Message:
        client = self._client(message)
        if client is None:
            return self._unknown_client(message)
        channel = str(message.get("subscription", ""))
        client.cursors.pop(channel, None)
        return _reply(message, clientId=client.client_id, subscription=channel, successful=True)

    def _disconnect(self, message: Message) -> Message:
        client = self._client(message)
        if client is None:
            return self._unknown_client(message)
        self._drop(client)
        logger.info("cometd disconnect client_id=%s", client.client_id)
        return _reply(message, clientId=client.client_id, successful=True)

    def _pending(self, client: _Client) -> list[Message]:
        """Undelivered events of every subscription, in replay order, cursors advanced."""
        found: list[tuple[int, str, Message]] = []
        limit = self.org.config.cometd_max_batch
        bus = self.org.bus
        for channel, cursor in client.cursors.items():
            entities = channel_entities(channel) or frozenset()
            for event in bus.after(cursor, entities, limit=limit):
                found.append((event.replay_id, channel, bus.cometd_data(event)))
        found.sort(key=lambda item: item[0])
        found = found[:limit]
        for replay_id, channel, _ in found:
            client.cursors[channel] = max(client.cursors.get(channel, replay_id), replay_id)
        self.delivered += len(found)
        return [{"data": data, "channel": channel} for _, channel, data in found]

    async def _connect(self, message: Message) -> list[Message]:
        client = self._client(message)
        if client is None:
            return [self._unknown_client(message)]
        client.signal.clear()
        events = self._pending(client)
        if not events and client.connected and not self._closing:
            client.polling += 1
            try:
                await asyncio.wait_for(
                    client.signal.wait(), self.org.config.cometd_timeout_ms / 1000
                )
            except TimeoutError:
                pass
            finally:
                client.polling -= 1
                client.last_seen = self.org.clock.monotonic()
            if client.closed:
                return [self._unknown_client(message)]
            events = self._pending(client)
        client.connected = True
        reply = _reply(message, clientId=client.client_id, successful=True, advice=self._advice)
        return [*events, reply]
