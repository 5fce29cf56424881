"""The live chat bridge: ``deskstream.events`` → ``deskstream.chat`` → the chat desk.

Two agents, registered when a live chat connector is configured (``connectors.base.registry
.chat_platforms``):

- ``chat-relay`` reads ``deskstream.events`` and copies onto ``deskstream.chat``, keyed by
  chat, what belongs to a live chat: a hand-off for the live chat target (its key is the
  hand-off's conversation, ``case_id``, scoped by its client: ``streams.chat.chat_key``)
  and the desk's events about a conversation the bridge opened (``ChatBridge.chat_of``: the
  key stamped on the conversation, cached). Both inputs are keyed per conversation on
  ``events``, so a chat's records keep their order. An event whose chat only the desk can
  tell waits for its answer in its partition's lane, with the rest of its partition behind
  it; the other partitions go on (``_register_relay``).
- ``chat-bridge`` reads ``deskstream.chat`` in per-partition lanes (``app.agents.lanes``): a
  hand-off starts the session on the desk (``ChatBridge.start``) and stores it in the
  ``chat_sessions`` table; a customer message is forwarded into the session's conversation;
  the desk's release of control ends the session. Its notices (started, failed, not
  forwarded) go onto the same chat, after the record that caused them.

The customer's client reads ``deskstream.chat`` through the worker (``app.web.chat``), and so
can any other consumer. Each input is acked once its outputs (and the table's changelog
record) are in Kafka; a record read again (``Positions.may_have_run``) or retried by its lane
reaches the desk as possibly done, and the desk checks its marker before writing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import (
    Revocations,
    ack_all_when_delivered,
    ack_when_delivered,
    expect,
    revoked_since_read,
)
from app.agents.lanes import Lanes
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.metrics import Metrics
from app.settings import Settings
from connectors.base.chat import ChatBridge, ChatSession
from connectors.base.registry import build_chat_bridge, chat_platforms
from connectors.base.retry import RetryPolicy, call_until_answered
from schemas.codec import decode_as, envelope_source
from schemas.errors import FatalAPIError, RetriableAPIError, SchemaError
from schemas.models import Envelope, Handoff, Platform
from streams.chat import (
    Action,
    Notice,
    chat_key,
    decide,
    is_live_chat,
    may_be_a_chats,
    notice,
)

__all__ = ["ChatDesks", "register_chat"]

log = logging.getLogger(__name__)

#: events the relay reads together (``noack_take``: what is queued, up to this many)
BATCH_MAX = 500
#: how long a batch waits to fill: the most a hand-off waits for company
BATCH_WAIT_S = 0.01


class ChatDesks:
    """The live chat connectors of this worker and the bridge of each, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.ids = frozenset(
            cid for cid, c in settings.connectors.items() if c.platform in chat_platforms()
        )
        self._bridges: dict[str, ChatBridge] = {}

    def bridge(self, connector_id: str) -> ChatBridge:
        bridge = self._bridges.get(connector_id)
        if bridge is None:
            config = self._settings.connectors[connector_id]
            bridge = self._bridges[connector_id] = build_chat_bridge(connector_id, config)
        return bridge

    def for_handoff(self, handoff: Handoff) -> str:
        """The desk a hand-off goes to: the workspace its metadata names, else its client's
        (``DESKSTREAM_CHAT__WORKSPACES``), else the only desk."""
        client = handoff.client_id
        chosen = handoff.metadata.get("workspace")
        if chosen is None and client:
            chosen = self._settings.chat.workspaces.get(client)
        if chosen is None and len(self.ids) == 1:
            chosen = next(iter(self.ids))
        if chosen is None or chosen not in self.ids:
            raise FatalAPIError(
                f"no live chat workspace for client {client!r}: set "
                "DESKSTREAM_CHAT__WORKSPACES__<client>=<connector id> to one of "
                f"{', '.join(sorted(self.ids))}"
            )
        return chosen

    def ended_text(self, connector_id: str) -> str:
        own = self._settings.connectors[connector_id].platform_settings
        return str(getattr(own, "ended_text", "The human support session has ended."))

    async def aclose(self) -> None:
        for bridge in self._bridges.values():
            await bridge.aclose()


def register_chat(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    sessions: faust.types.TableT[str, Any],
    revocations: Revocations,
) -> ChatDesks:
    desks = ChatDesks(settings)
    _register_relay(app, channels, settings, metrics, desks, revocations)
    _register_bridge(app, channels, settings, metrics, sessions, revocations, desks)
    return desks


def _register_relay(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    desks: ChatDesks,
    revocations: Revocations,
) -> None:
    # A hand-off Faust's fetcher dropped in a rebalance would never open its chat: records
    # reach the relay in an unbroken run, or their partition is read again (as every agent).
    topic = channels.events.get_topic_name()
    positions = Positions(app, metrics, "chat-relay", [topic])

    async def chat_of(event: Envelope, record: faust.EventT[Any]) -> str | None:
        """The chat ``event`` (read from ``record``) belongs to, if any."""
        data = event.data
        if isinstance(data, Handoff):
            # Scoped by the client that handed it off: only that client can reach it.
            return chat_key(event.source.connector_id, data.case_id) if is_live_chat(data) else None
        connector, entity_id = event.source.connector_id, event.source.entity_id
        if connector not in desks.ids:
            return None
        bridge = desks.bridge(connector)
        waited = False

        async def ask() -> str | None:
            try:
                return await bridge.chat_of(entity_id)
            except FatalAPIError as exc:
                if exc.status in (401, 403):  # credentials: waited out as an outage, until fixed
                    raise RetriableAPIError(str(exc), status=exc.status) from exc
                raise

        def unanswered(error: RetriableAPIError, rounds: int) -> None:
            nonlocal waited
            if not waited:
                waited = True
                metrics.chat_relay_waiting.labels(connector).inc()
            log.warning(
                "chat desk not answering connector=%s rounds=%d error=%s: the chat relay asks "
                "again every %g s; this event's partition of the events topic waits behind it "
                "(paused once 64 wait, kept in Kafka), the other partitions go on. Check the "
                "desk's status, its connector's API_BASE_URL and credentials; nothing is lost",
                connector,
                rounds,
                error,
                pause_s,
            )

        try:
            return await call_until_answered(
                ask,
                policy,
                wanted=lambda: not revoked_since_read(record),  # else its next owner relays it
                on_unanswered=unanswered,
                pause_s=pause_s,
            )
        except FatalAPIError as exc:  # 404: deleted since, or never there; 4xx: not a chat
            log.warning("desk conversation not found, not relayed error=%s", exc)
            return None
        finally:
            if waited:
                metrics.chat_relay_waiting.labels(connector).dec()

    # A desk that stays down past a round of attempts is asked again, round after round, in
    # the lane of the event's partition (below): nothing is set aside or lost, and failing
    # would crash the worker (acks.Revocations) and take normalize, sync and the webhooks down
    # with it, again at every restart, for as long as the desk is down.
    policy = RetryPolicy(
        attempts=settings.sink_max_attempts,
        max_s=settings.sink_max_backoff_seconds,
        rate_limited_s=settings.sink_rate_limited_max_seconds,
    )
    pause_s = settings.sink_max_backoff_seconds

    def for_a_chat(value: bytes) -> Envelope | None:
        """The event, when a chat may need it."""
        # Most events are no chat's: their source, read from the front, says so without a
        # decode of the whole event.
        source = envelope_source(value)
        if source is not None and not may_be_a_chats(source, desks=desks.ids):
            return None
        try:
            return decode_as(value, Envelope)
        except SchemaError:
            return None  # normalize wrote it; a record this version cannot read is no chat's

    def asks_the_desk(envelope: Envelope) -> bool:
        """Whether finding the event's chat takes a call to the desk: a desk's event about a
        conversation not seen yet (or no longer remembered)."""
        connector = envelope.source.connector_id
        return (
            not isinstance(envelope.data, Handoff)
            and connector in desks.ids
            and not desks.bridge(connector).knows(envelope.source.entity_id)
        )

    async def relay(event: faust.EventT[Any], envelope: Envelope) -> list[Awaitable[Any]]:
        chat_id = await chat_of(envelope, event)
        if chat_id is None:
            return []
        return [await channels.chat.send(key=chat_id.encode(), value=envelope)]

    async def relay_in_lane(
        event: faust.EventT[Any], envelope: Envelope | None, again: bool
    ) -> None:
        ack_when_delivered(app, event, [] if envelope is None else await relay(event, envelope))

    # An event whose chat only the desk can tell, and every event of its partition after it
    # while its lane is busy, go through per-partition lanes (app.agents.lanes), as the
    # sinks' commands do: a desk slow to answer, or down for an hour, holds only its
    # partitions, their order kept, and no more of them than the lane's depth (64: the lane
    # then pauses the partition; events read ahead would be held unacked, in memory, for the
    # whole outage). Every other partition goes on in the batch. A revocation or a stop cuts
    # a lane waiting between two attempts at once.
    lanes: Lanes[Envelope | None] = Lanes(
        relay_in_lane, lambda: cast(Any, app.consumer), read=lambda e: for_a_chat(e.value)
    )
    lanes.release_on_revocation(revocations, topic, settings.sink_release_grace_seconds)

    async def relay_batch(batch: list[faust.EventT[Any]]) -> None:
        read: list[faust.EventT[Any]] = []
        sends: list[Awaitable[Any]] = []
        #: read since the last event handed to a lane: their places in the ack order are
        #: taken before its, and the rest at the end (``ack_all_when_delivered``)
        unplaced: list[faust.EventT[Any]] = []
        for event in batch:
            if not positions.received(event):
                continue  # records before it were skipped: read again from the first one
            if not lanes.busy_for(event):
                envelope = for_a_chat(event.value)
                if envelope is None or not asks_the_desk(envelope):
                    read.append(event)
                    unplaced.append(event)
                    if envelope is not None:
                        sends += await relay(event, envelope)
                    continue
            if revoked_since_read(event):
                continue  # its partition's next owner has it (and its lane was released)
            for earlier in unplaced:
                expect(earlier)
            unplaced.clear()
            expect(event)
            lanes.submit(event)
        ack_all_when_delivered(app, read, sends)

    in_hand = revocations.in_hand("chat-relay")

    @app.agent(inbound(app, channels.events), name="chat-relay")
    async def relay_to_chats(stream: faust.StreamT[Any]) -> None:
        # It reads every event normalize writes, nearly all of them no chat's: in batches,
        # acked together once what they relayed is in Kafka (StreamT does not declare
        # noack_take(); the object is always a faust.Stream).
        batches = cast(faust.Stream[bytes], stream).noack_take(BATCH_MAX, within=BATCH_WAIT_S)
        async for batch in batches:
            with in_hand:  # a revocation waits for it (app.agents.acks.Revocations)
                await relay_batch(cast(list[faust.EventT[Any]], batch))


def _register_bridge(
    app: faust.App,
    channels: Channels,
    settings: Settings,
    metrics: Metrics,
    sessions: faust.types.TableT[str, Any],
    revocations: Revocations,
    desks: ChatDesks,
) -> None:
    topic_name = channels.chat.get_topic_name()
    positions = Positions(app, metrics, "chat-bridge", [topic_name])

    async def keep(partition: int, chat_id: str, session: ChatSession) -> Awaitable[Any]:
        # What `sessions[chat_id] = ...` does, keeping the changelog write's future.
        value = session.to_json()
        sessions.data[chat_id] = value
        return cast(Awaitable[Any], sessions.send_changelog(partition, chat_id, value))

    async def tell(
        cause: Envelope, kind: Notice, chat_id: str, connector: str, text: str = ""
    ) -> Any:
        record = notice(
            cause,
            kind,
            platform=Platform(desks_platform(connector)),
            connector_id=connector,
            chat_id=chat_id,
            at=datetime.now(UTC),
            text=text or None,
        )
        return await channels.chat.send(key=chat_id.encode(), value=record)

    def desks_platform(connector: str) -> str:
        return str(settings.connectors[connector].platform)

    def read(event: faust.EventT[Any]) -> Envelope | SchemaError:
        try:
            return decode_as(event.value, Envelope)
        except SchemaError as exc:
            return exc

    async def handle(event: faust.EventT[Any], read: Envelope | SchemaError, again: bool) -> None:
        if isinstance(read, SchemaError):
            log.error(
                "chat record unreadable, skipped offset=%s error=%s", event.message.offset, read
            )
            ack_when_delivered(app, event, [])
            return
        record = read
        chat_id = (event.key or b"").decode("utf-8", "replace")
        partition = event.message.partition
        decision = decide(record, desks=desks.ids)
        raw = sessions.data.get(chat_id)
        session = ChatSession.from_json(raw) if raw else None
        possibly_done = again or positions.may_have_run(event)
        sends: list[Awaitable[Any]] = []
        if decision.action is Action.START and decision.handoff is not None:
            connector = session.connector_id if session else None
            try:
                connector = connector or desks.for_handoff(decision.handoff)
                started = await desks.bridge(connector).start(
                    chat_id, decision.handoff, marker=record.event_id, possibly_done=possibly_done
                )
            except FatalAPIError as exc:
                log.warning("live chat not started chat=%s error=%s", chat_id, exc)
                where = connector or next(iter(sorted(desks.ids)))
                sends.append(await tell(record, Notice.FAILED, chat_id, where, str(exc)))
            else:
                sends.append(await keep(partition, chat_id, started))
                sends.append(await tell(record, Notice.STARTED, chat_id, connector))
        elif decision.action is Action.FORWARD and decision.message is not None:
            if session is None or session.ended:
                where = session.connector_id if session else next(iter(sorted(desks.ids)))
                sends.append(await tell(record, Notice.NOT_FORWARDED, chat_id, where))
            elif record.event_id not in session.forwarded:  # else a copy: dropped
                try:
                    await desks.bridge(session.connector_id).forward(
                        session,
                        decision.message,
                        marker=record.event_id,
                        possibly_done=possibly_done,
                    )
                except FatalAPIError as exc:
                    log.warning("chat message not forwarded chat=%s error=%s", chat_id, exc)
                    sends.append(
                        await tell(record, Notice.NOT_FORWARDED, chat_id, session.connector_id)
                    )
                else:
                    forwarded = session.after_forwarding(record.event_id)
                    sends.append(await keep(partition, chat_id, forwarded))
        elif decision.action is Action.END and session is not None and not session.ended:
            sends.append(await keep(partition, chat_id, replace(session, ended=True)))
        ack_when_delivered(app, event, sends)

    lanes = Lanes(handle, lambda: cast(Any, app.consumer), read=read)

    grace = settings.sink_release_grace_seconds
    lanes.release_on_revocation(revocations, topic_name, grace)

    @app.agent(inbound(app, channels.chat), name="chat-bridge")
    async def bridge_chats(stream: faust.StreamT[Any]) -> None:
        await lanes.feed(app, stream, positions.received, grace=grace)
