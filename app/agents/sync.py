"""sync: ``deskstream.sync`` (events and due timers by link) + ``deskstream.writes`` (results
by link) → commands, audit records, timers and entity snapshots, with each link's state in the
``links`` table.

Both inputs are keyed by link id and have the same partition count, so a link's events, its
write results and its state are always in the same partition on the same worker. A timer the
planner asks for goes to ``deskstream.timers`` and comes back on ``deskstream.sync`` when due
(``app.agents.timers``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import ack_when_delivered, acked_below, hold
from app.agents.owners import OwnerEmails
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.metrics import Metrics
from app.profiles import ProfileCache, profile_key
from connectors.base.links import contact_link_id
from schemas.codec import decode, encode
from schemas.errors import SchemaError
from schemas.models import (
    ActorKind,
    Case,
    Contact,
    EntityType,
    Envelope,
    Message,
    Platform,
    Timer,
    WriteResult,
)
from streams import outbox, state_codec
from streams.emit import command_key
from streams.outbox import Position
from streams.sync import SyncPlanner

__all__ = ["register_sync"]

log = logging.getLogger(__name__)


#: how often an event is decided again when the planner asks for it, backing off each time
MAX_RETRIES = 5
_RETRY_MARK = "~retry"


def _profile_for(event: Envelope, profiles: ProfileCache) -> Contact | None:
    """The customer behind a case event: by email for Intercom conversations, by user id for
    Zendesk tickets (whose events name the requester by id only)."""
    data = event.data
    source = event.source
    if isinstance(data, Message) and source.platform is Platform.ZENDESK:
        author = data.author  # a requester's own comment names them by id too
        if author.kind is ActorKind.CUSTOMER and author.id:
            return profiles.by_member("zendesk", author.id)
        return None
    if not isinstance(data, Case) or data.requester is None:
        return None
    requester = data.requester
    if requester.email:
        return profiles.get(
            contact_link_id(
                requester.email,
                platform=source.platform.value,
                connector_id=source.connector_id,
                entity_id=source.entity_id,
            )
        )
    if source.platform is Platform.ZENDESK and requester.id:
        return profiles.by_member("zendesk", requester.id)
    return None


def _retry_of(event: Envelope) -> tuple[Envelope, float] | None:
    """The same event under its next deterministic retry id, and when to send it; None once
    the retries are spent. Waiting inside the agent would block the very stream that has to
    bring the missing information, so the event goes round again instead."""
    original, _, attempt_text = event.event_id.partition(_RETRY_MARK)
    attempt = int(attempt_text or 0) + 1
    if attempt > MAX_RETRIES:
        return None
    again = event.model_copy(update={"event_id": f"{original}{_RETRY_MARK}{attempt}"})
    return again, float(2 ** (attempt - 1))


def _snapshot_key(link: bytes, event: Envelope) -> bytes | None:
    """Where the latest state goes in ``deskstream.entities``: cases under their link;
    contacts under link and platform (so compaction keeps each side's profile, which
    ``ProfileCache`` merges)."""
    if event.data is None:
        return None
    if event.source.entity_type is EntityType.CONTACT:
        return profile_key(link.decode(), event.source.platform.value).encode()
    if event.source.entity_type is EntityType.CASE:
        return link
    return None


async def _send_later(channels: Channels, key: bytes, event: Envelope, delay: float) -> None:
    """Send ``event`` round again after ``delay`` seconds; done once Kafka has it. The input
    that asked for it stays unacknowledged until then, so a crash in the wait reads the input
    again and its outbox entry asks again: the re-decision is as durable as the input."""
    await asyncio.sleep(delay)
    await (await channels.sync.send(key=key, value=event))


def register_sync(
    app: faust.App,
    channels: Channels,
    links: faust.types.TableT[str, bytes],
    planner: SyncPlanner,
    profiles: ProfileCache,
    metrics: Metrics,
    owners: OwnerEmails,
) -> faust.types.AgentT[Any]:
    positions = Positions(
        app,
        metrics,
        "sync",
        [channels.sync.get_topic_name(), channels.writes.get_topic_name()],
    )

    command_topics = {p: t.get_topic_name() for p, t in channels.commands.items()}
    audit_topic = channels.audit.get_topic_name()
    timers_topic = channels.timers.get_topic_name()
    entities_topic = channels.entities.get_topic_name()

    async def publish(
        key: bytes, done: outbox.Step, snapshot: Envelope | None, snapshot_value: bytes
    ) -> list[Awaitable[Any]]:
        # Straight to the producer with the bytes the outbox encoded: each record is encoded
        # once, and Faust's per-send machinery (Topic.send) stays off the hot path.
        send = app.producer.send
        sends: list[Awaitable[Any]] = []
        for command, value in zip(done.commands, done.command_values, strict=True):
            topic = command_topics[command.target.platform.value]
            sends.append(await send(topic, command_key(command).encode(), value, None, None, None))
        for value in done.timer_values:
            sends.append(await send(timers_topic, key, value, None, None, None))
        for audit_record, value in zip(done.audits, done.audit_values, strict=True):
            metrics.sync_decisions.labels(audit_record.stage, audit_record.decision).inc()
            sends.append(await send(audit_topic, key, value, None, None, None))
        snapshot_key = _snapshot_key(key, snapshot) if snapshot is not None else None
        if snapshot_key is not None:
            sends.append(await send(entities_topic, snapshot_key, snapshot_value, None, None, None))
        return sends

    @app.agent(inbound(app, channels.sync, channels.writes), name="sync")
    async def sync_links(stream: faust.StreamT[Any]) -> None:
        async for event in cast(faust.Stream[bytes], stream).noack().events():
            key: bytes = event.key or b""
            if not positions.received(event):
                continue
            try:
                record = decode(event.value)
            except SchemaError as exc:
                # Our own workers wrote these topics: an unreadable record means version
                # skew. Skipping it loses one sync step, not data (events and writes keep it).
                log.error("sync skipped an unreadable record key=%s error=%s", key, exc)
                metrics.sync_decisions.labels("sync", "unreadable").inc()
                ack_when_delivered(app, event, [])
                continue
            if not isinstance(record, Envelope | WriteResult | Timer):
                ack_when_delivered(app, event, [])
                continue
            link = key.decode()
            message = event.message
            raw: bytes | None = links.get(link)
            state = state_codec.decode(raw) if raw is not None else None
            read = record
            if isinstance(record, Envelope):  # owners are compared by email: fill it in
                record = await owners.fill(record, state.agents if state is not None else {})
            done = outbox.step(
                planner,
                raw,
                record,
                position=Position(message.topic, message.partition, message.offset),
                delivered_below=acked_below,
                may_have_run=positions.may_have_run(event),
                now=datetime.now(UTC),
                profile=_profile_for(record, profiles) if isinstance(record, Envelope) else None,
                state=state,
            )
            if done.resent:
                metrics.sync_decisions.labels("sync", "outbox_resent").inc()
                log.info(
                    "sync re-sent what an input read again had caused link=%s offset=%s "
                    "commands=%d",
                    link,
                    message.offset,
                    len(done.commands),
                )
            snapshot = record if isinstance(record, Envelope) else None
            # The snapshot is the input as read, unless an owner's email was filled in.
            value = event.value if record is read or snapshot is None else encode(snapshot)
            sends = await publish(key, done, snapshot, value)
            if done.state is not None:
                # What `links[link] = state` does, keeping the changelog write's future: the
                # input is acked only once its state is durable too. Otherwise a crash after
                # the ack can restore a state without this input's effects, and a later event
                # about the same change (another id) is taken for a new one.
                links.data[link] = done.state
                sends.append(links.send_changelog(message.partition, link, done.state))
            retry = None
            if done.retry_in is not None and snapshot is not None:
                retry = _retry_of(snapshot)
            if retry is not None:
                sends.append(hold(asyncio.ensure_future(_send_later(channels, key, *retry))))
            ack_when_delivered(app, event, sends, deferred=retry is not None)

    return sync_links
