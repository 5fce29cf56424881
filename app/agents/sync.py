"""sync: ``deskstream.sync`` (events by link) + ``deskstream.writes`` (results by link) →
commands, audit records and entity snapshots, with each link's state in the ``links`` table.

Both inputs are keyed by link id and have the same partition count, so a link's events, its
write results and its state are always in the same partition on the same worker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, cast

import faust

from app.agents.acks import ack_when_delivered
from app.channels import Channels, inbound
from app.errors import SchemaError
from app.metrics import Metrics
from app.profiles import ProfileCache
from connectors.base.links import contact_link_id
from schemas.codec import decode
from schemas.models import Case, Contact, EntityType, Envelope, Platform, WriteResult
from streams.emit import command_key
from streams.sync import Plan, SyncPlanner

__all__ = ["register_sync"]

log = logging.getLogger(__name__)


def _profile_for(event: Envelope, profiles: ProfileCache) -> Contact | None:
    data = event.data
    if isinstance(data, Case) and data.requester is not None and data.requester.email:
        source = event.source
        return profiles.get(
            contact_link_id(
                data.requester.email,
                platform=source.platform.value,
                connector_id=source.connector_id,
                entity_id=source.entity_id,
            )
        )
    return None


def _snapshot(event: Envelope) -> bool:
    """Latest state worth keeping in ``deskstream.entities``: the origin's records and the
    Intercom contact (the profile the escalations read back through ``ProfileCache``)."""
    if event.data is None:
        return False
    if event.source.entity_type is EntityType.CONTACT:
        return event.source.platform is Platform.INTERCOM
    return event.source.entity_type is EntityType.CASE


def register_sync(
    app: faust.App,
    channels: Channels,
    links: faust.types.TableT[str, Any],
    planner: SyncPlanner,
    profiles: ProfileCache,
    metrics: Metrics,
) -> faust.types.AgentT[Any]:
    async def publish(key: bytes, plan: Plan, event: Envelope | None) -> list[Awaitable[Any]]:
        sends: list[Awaitable[Any]] = []
        for command in plan.commands:
            topic = channels.commands[command.target.platform.value]
            sends.append(await topic.send(key=command_key(command).encode(), value=command))
        for record in plan.audits:
            metrics.sync_decisions.labels(record.stage, record.decision).inc()
            sends.append(await channels.audit.send(key=key, value=record))
        if event is not None and _snapshot(event):
            sends.append(await channels.entities.send(key=key, value=event))
        return sends

    @app.agent(inbound(app, channels.sync, channels.writes), name="sync")
    async def sync_links(stream: faust.StreamT[Any]) -> None:
        async for event in cast(faust.Stream[bytes], stream).noack().events():
            key: bytes = event.key or b""
            try:
                record = decode(event.value)
            except SchemaError as exc:
                # Our own workers wrote these topics: an unreadable record means version
                # skew. Skipping it loses one sync step, not data (events and writes keep it).
                log.error("sync skipped an unreadable record key=%s error=%s", key, exc)
                metrics.sync_decisions.labels("sync", "unreadable").inc()
                event.ack()
                continue
            now = datetime.now(UTC)
            link = key.decode()
            if isinstance(record, Envelope):
                profile = _profile_for(record, profiles)
                plan = planner.on_event(links.get(link), record, now=now, profile=profile)
                snapshot: Envelope | None = record
            elif isinstance(record, WriteResult):
                plan = planner.on_write(links.get(link), record, now=now)
                snapshot = None
            else:
                event.ack()
                continue
            links[link] = plan.state.to_json()
            ack_when_delivered(app, event, await publish(key, plan, snapshot))

    return sync_links
