"""sync: ``deskstream.sync`` (events and due timers by link) + ``deskstream.writes`` (results
by link) → commands, audit records, timers and entity snapshots, with each link's state in the
``links`` table.

Both inputs are keyed by link id and have the same partition count, so a link's events, its
write results and its state are always in the same partition on the same worker. A timer the
planner asks for goes to ``deskstream.timers`` and comes back on ``deskstream.sync`` when due
(``app.agents.timers``).

Inputs are taken in batches (``noack_take``: up to ``BATCH_MAX`` taken from the stream's queue
at once, or what arrived within ``BATCH_WAIT_S``: ``app.batch_stream``) and decided one after
the other, in reading order, each seeing the state the one before left (giving way to webhooks
waiting for their answer: ``app.give_way``). The records a batch causes go out as one Kafka
batch per partition (``app.agents.batch_send``), with one changelog record per link (its last
state), and the inputs are acked, in reading order, once all of them are acknowledged. Per
input, Faust's ``Topic.send``, a future per record and a gather per input cost more than the
decision (``docs/performance.md``, "Sync stage").

A revocation waits for the batch in hand (``app.agents.acks.Revocations``); one that outlasts
the wait writes nothing more to the table for the partitions taken from it meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import faust

# Faust's own "current event" (``faust.streams.current_event`` reads it): a RocksDB store
# finds the partition, and so the database, a table read or write goes to from it.
from faust.streams import _current_event

from app.agents.acks import (
    Revocations,
    ack_all_when_delivered,
    ack_when_delivered,
    acked_below,
    hold,
    revoked_since_read,
)
from app.agents.batch_send import BatchSend, TableChangelog
from app.agents.owners import OwnerEmails, OwnerLookups
from app.agents.positions import Positions
from app.channels import Channels, inbound
from app.give_way import WaitingDeliveries, giving_way
from app.metrics import Labelled, Metrics
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

__all__ = ["changelog_state", "register_sync"]

log = logging.getLogger(__name__)


#: how often an event is decided again when the planner asks for it, backing off each time
MAX_RETRIES = 5
_RETRY_MARK = "~retry"

#: inputs decided together: their records go out as one Kafka batch per partition
BATCH_MAX = 500
#: how long a batch waits to fill: the most a lone event waits for company
BATCH_WAIT_S = 0.01

#: an event to send round again, and in how many seconds (``_retry_of``)
Retry = tuple[Envelope, float]


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


def _retry_of(event: Envelope) -> Retry | None:
    """The same event under its next deterministic retry id, and when to send it; None once
    the retries are spent. Waiting inside the agent would block the very stream that has to
    bring the missing information, so the event goes round again instead."""
    original, _, attempt_text = event.event_id.partition(_RETRY_MARK)
    attempt = int(attempt_text or 0) + 1
    if attempt > MAX_RETRIES:
        return None
    again = event.model_copy(update={"event_id": f"{original}{_RETRY_MARK}{attempt}"})
    return again, float(2 ** (attempt - 1))


#: the audit decisions of a report that asked to be decided again (``Plan.retry_in``)
_WAITS = frozenset({"assignee_unresolved", "escalation_waiting", "ack_waiting"})


def _retries_spent(link: str, event: Envelope, decisions: Iterable[str]) -> None:
    """The planner still waits after ``MAX_RETRIES`` re-decisions: nothing sends the report
    round again. An owner not synced is a warning (a person's assignment is lost until the
    next change of the record); the other waits (an escalation's first message, a requester's
    email) are taken up again by any later event of the record."""
    waits = sorted(set(decisions) & _WAITS)
    owner = "assignee_unresolved" in waits
    log.log(
        logging.WARNING if owner else logging.INFO,
        "sync stopped deciding a report again link=%s event=%s retries=%d waiting_for=%s: "
        "what it waited for did not come in time (`deskstream audit trace %s` shows the "
        "link's decisions)%s",
        link,
        event.event_id,
        MAX_RETRIES,
        ",".join(waits) or "-",
        link,
        "; its owner is not synced until the record changes again" if owner else "",
    )


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


def changelog_state(new: bytes | None, stored: bytes | None, *, read_again: bool) -> bytes | None:
    """The state an input's decision sends to its link's changelog: the new one it made; or,
    for an input read again (a restart, a rebalance) that changed nothing, the stored one.

    A RocksDB store is on the worker's disk, and outlives a stop between its write and the
    acknowledgement of the changelog record: a worker restarted on it finds the input's
    effects already there, decides nothing new, and acks the input with the changelog still
    behind. The partition's next owner would then restore a state without them. Written
    again, the changelog catches up (with the memory store it already holds that state: one
    record more, per link and batch, after a restart)."""
    if new is not None:
        return new
    return stored if read_again else None


def register_sync(
    app: faust.App,
    channels: Channels,
    links: faust.types.TableT[str, bytes],
    planner: SyncPlanner,
    profiles: ProfileCache,
    metrics: Metrics,
    owners: OwnerEmails,
    waiting: WaitingDeliveries,
    revocations: Revocations,
) -> faust.types.AgentT[Any]:
    positions = Positions(
        app,
        metrics,
        "sync",
        [channels.sync.get_topic_name(), channels.writes.get_topic_name()],
    )

    store = links.data  # the table without its sensors and changelog: both are done here
    command_topics = {p: t.get_topic_name() for p, t in channels.commands.items()}
    audit_topic = channels.audit.get_topic_name()
    timers_topic = channels.timers.get_topic_name()
    entities_topic = channels.entities.get_topic_name()
    producer = lambda: cast(Any, app.producer)._ensure_producer()  # noqa: E731  (aiokafka's)
    out = BatchSend(producer)
    changelog = TableChangelog(links, producer)
    key_serializer = cast(Any, links).key_serializer  # TableT does not declare it
    decisions = Labelled(metrics.sync_decisions)  # counted once per audit record

    def changelog_key(link: str) -> bytes:
        """The key as Faust's own ``Table.send_changelog`` encodes it."""
        return cast(
            bytes, app.serializers.dumps_key(links.key_type, link, serializer=key_serializer)
        )

    def publish(key: bytes, done: outbox.Step, snapshot: Envelope | None, value: bytes) -> None:
        # Into the batch with the bytes the outbox encoded: each record is encoded once, and
        # Faust's per-send machinery (Topic.send) stays off the hot path.
        for command, command_value in zip(done.commands, done.command_values, strict=True):
            topic = command_topics[command.target.platform.value]
            out.add(topic, command_key(command).encode(), command_value)
        for timer_value in done.timer_values:
            out.add(timers_topic, key, timer_value)
        for audit_record, audit_value in zip(done.audits, done.audit_values, strict=True):
            decisions(audit_record.stage, audit_record.decision).inc()
            out.add(audit_topic, key, audit_value)
        snapshot_key = _snapshot_key(key, snapshot) if snapshot is not None else None
        if snapshot_key is not None:
            out.add(entities_topic, snapshot_key, value)

    async def decide(
        event: faust.EventT[Any],
        states: dict[str, tuple[faust.EventT[Any], bytes]],
        lookups: OwnerLookups,
    ) -> Retry | None:
        """One input through the planner: its outputs into the batch, the link's new state
        into the table (and ``states``, for the batch's changelog). Returns the re-decision
        the planner asked for, if any. ``lookups``: the batch's owner lookups."""
        key: bytes = event.key or b""
        try:
            record = decode(event.value)
        except SchemaError as exc:
            # Our own workers wrote these topics: an unreadable record means version skew.
            # Skipping it loses one sync step, not data (events and writes keep it).
            log.error("sync skipped an unreadable record key=%s error=%s", key, exc)
            metrics.sync_decisions.labels("sync", "unreadable").inc()
            return None
        if not isinstance(record, Envelope | WriteResult | Timer):
            return None
        link = key.decode()
        message = event.message
        # A RocksDB store finds the partition's database from Faust's current event.
        _current_event.set(weakref.ref(event))
        raw: bytes | None = store.get(link)
        state = state_codec.decode(raw) if raw is not None else None
        read = record
        if isinstance(record, Envelope):  # owners are compared by email: fill it in
            agents = state.agents if state is not None else {}
            record = await lookups.fill(record, agents)
        may_have_run = positions.may_have_run(event)
        done = outbox.step(
            planner,
            raw,
            record,
            position=Position(message.topic, message.partition, message.offset),
            delivered_below=acked_below,
            may_have_run=may_have_run,
            now=datetime.now(UTC),
            profile=_profile_for(record, profiles) if isinstance(record, Envelope) else None,
            state=state,
        )
        if done.resent:
            metrics.sync_decisions.labels("sync", "outbox_resent").inc()
            log.info(
                "sync re-sent what an input read again had caused link=%s offset=%s commands=%d",
                link,
                message.offset,
                len(done.commands),
            )
        snapshot = record if isinstance(record, Envelope) else None
        # The snapshot is the input as read, unless an owner's email was filled in.
        value = event.value if record is read or snapshot is None else encode(snapshot)
        publish(key, done, snapshot, value)
        if revoked_since_read(event):
            pass  # the partition's next owner has the table now (acks.Revocations)
        elif done.state is not None:
            # `links[link] = state` without its changelog record, which goes out with the
            # batch's (the link's last state in the batch): the inputs are acked only once it
            # is durable too. Otherwise a crash after the ack can restore a state without
            # their effects, and a later event about the same change (another id) is taken
            # for a new one.
            store[link] = done.state
            states[link] = (event, done.state)
        elif link not in states:  # nothing new: the changelog may still need the stored state
            written = changelog_state(None, raw, read_again=may_have_run)
            if written is not None:
                states[link] = (event, written)
        if done.retry_in is not None and snapshot is not None:
            retry = _retry_of(snapshot)
            if retry is None:
                if not done.resent:  # told once, not again when the input is read again
                    metrics.sync_decisions.labels("sync", "retries_spent").inc()
                    _retries_spent(link, snapshot, [a.decision for a in done.audits])
                return None
            # Not while its owner's lookups are quiet (app.agents.owners).
            return retry[0], max(retry[1], owners.quiet_left(snapshot))
        return None

    def ack(
        read: list[faust.EventT[Any]], sends: list[Awaitable[Any]], retries: dict[int, Retry]
    ) -> None:
        """Ack the batch's inputs, in reading order, once its records are acknowledged; an
        input that asked to be decided again later waits for that send too (``deferred``)."""
        start = 0
        for at, (again, delay) in sorted(retries.items()):
            if start < at:
                ack_all_when_delivered(app, read[start:at], sends)
            key = read[at].key or b""
            later = hold(asyncio.ensure_future(_send_later(channels, key, again, delay)))
            ack_when_delivered(app, read[at], [*sends, later], deferred=True)
            start = at + 1
        if start < len(read):
            ack_all_when_delivered(app, read[start:], sends)

    batch_fill = metrics.batch_inputs.labels("sync")  # labelled once: it is per batch
    in_hand = revocations.in_hand("sync")

    async def sync_batch(batch: list[faust.EventT[Any]]) -> None:
        read: list[faust.EventT[Any]] = []
        retries: dict[int, Retry] = {}
        states: dict[str, tuple[faust.EventT[Any], bytes]] = {}
        lookups = owners.batch()  # the batch's owner lookups share one budget
        # The loop turns within the batch for webhooks, acks and the fetcher (app.give_way)
        async for event in giving_way(batch, waiting):
            if not positions.received(event):
                continue  # records before it were skipped: read again from the first one
            retry = await decide(event, states, lookups)
            if retry is not None:
                retries[len(read)] = retry
            read.append(event)
        sends: list[Awaitable[Any]] = list(await out.send())
        sends += await changelog.write(
            [
                (last.message.partition, changelog_key(link), state)
                for link, (last, state) in states.items()
                # revoked while the batch was in hand (acks.Revocations)
                if not revoked_since_read(last)
            ]
        )
        ack(read, sends, retries)

    @app.agent(inbound(app, channels.sync, channels.writes), name="sync")
    async def sync_links(stream: faust.StreamT[Any]) -> None:
        # StreamT does not declare noack_take(); the object is always a faust.Stream. The
        # inputs are acked here, once their outputs and states are in Kafka, never by Faust.
        batches = cast(faust.Stream[bytes], stream).noack_take(BATCH_MAX, within=BATCH_WAIT_S)
        async for batch in batches:
            batch_fill.observe(len(batch))
            with in_hand:  # a revocation waits for it (app.agents.acks.Revocations)
                await sync_batch(cast(list[faust.EventT[Any]], batch))

    return sync_links
