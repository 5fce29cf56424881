"""``deskstream audit trace <platform>:<type>:<id>``: one record's story across the platforms.

    deskstream audit trace intercom:conversation:215469
    deskstream audit trace zendesk:ticket:5158
    deskstream audit trace contact:maria@example.com
    deskstream audit trace handoff:conv-215        (an AI hand-off, by the client's conversation id)
    deskstream audit trace lnk_0f4e...

An Intercom conversation (or a Zendesk ticket that started in Zendesk) names its link directly,
as does an AI hand-off (``handoff:<id>`` is ``ai_agent:conversation:<id>``; one handed off
in an Intercom conversation lives in that conversation's link): its trail holds
the request, the data it carried, the record it made and what happened to that record since;
a Zendesk ticket that mirrors a conversation is found through the audit records of the writes
that made it. The audit topic is keyed by link, so a known link is read from its partition only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import click
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_connection import bootstrap_servers
from app.key_partitioner import partition_of
from app.schema_registry import install_schema_registry
from app.settings import Settings, get_settings
from connectors.base.links import case_link_id, contact_link_id, is_link_id
from schemas.codec import decode
from schemas.errors import ConfigurationError
from schemas.models import AuditRecord

__all__ = ["audit", "read_trail", "resolve_reference"]

_CASE_TYPES = {"conversation", "ticket", "case"}


@click.group()
def audit() -> None:
    """Read the audit trail."""


@audit.command()
@click.argument("reference")
@click.option("--connector", default=None, help="Connector id, when several share a platform.")
def trace(reference: str, connector: str | None) -> None:
    """Print the story of one record: every decision and write, in order."""
    settings = get_settings()
    install_schema_registry(settings, register=False)  # records name their schema ids
    link, record = resolve_reference(settings, reference, connector)
    records = asyncio.run(read_trail(settings, link, record))
    if not records:
        raise click.ClickException(
            f"no audit records for {reference}; check the reference (platform:type:id) and the "
            "connector, or whether the record was ever seen by this Deskstream"
        )
    click.echo(f"{reference} → link {records[0].link_id}")
    for entry in records:
        details = " ".join(f"{k}={v}" for k, v in sorted(entry.details.items()) if v)
        click.echo(
            f"  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.stage:8} {entry.decision:30} {entry.reason}"
            + (f"  [{details}]" if details else "")
        )


def resolve_reference(
    settings: Settings, reference: str, connector: str | None
) -> tuple[str | None, str | None]:
    """(link id when it can be derived, else the record id to look for in write audits)."""
    if is_link_id(reference):
        return reference, None
    parts = reference.split(":", 2)
    if len(parts) == 2 and parts[0] == "handoff":
        parts = ["ai_agent", "conversation", parts[1]]
    if len(parts) == 2 and parts[0] == "contact":
        return contact_link_id(parts[1], platform="", connector_id="", entity_id=""), None
    if len(parts) != 3 or parts[1] not in _CASE_TYPES:
        raise ConfigurationError(
            f"cannot read {reference!r}: use <platform>:<conversation|ticket|case>:<id>, "
            "contact:<email>, handoff:<conversation id> or a link id"
        )
    platform, _, entity_id = parts
    connector_id = connector or _connector_of(settings, platform)
    if platform == "zendesk":
        # A mirrored ticket's link started in Intercom: find it through the writes.
        return None, entity_id
    return case_link_id(platform, connector_id, entity_id), None


def _connector_of(settings: Settings, platform: str) -> str:
    ids = [cid for cid, c in settings.connectors.items() if c.platform == platform]
    if len(ids) != 1:
        raise ConfigurationError(
            f"{len(ids)} {platform} connectors are configured; name one with --connector"
        )
    return ids[0]


async def read_trail(settings: Settings, link: str | None, record: str | None) -> list[AuditRecord]:
    """A link's audit records, oldest first (by link id, or by a record its writes made)."""
    topic = settings.topic("audit")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=None,
        # a read from the start: an assignment's own offset lookup must not land at the end
        # (aiokafka applies any lookup to a partition waiting for one; KAFKA-7703)
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        if link is not None:
            index = partition_of(link.encode(), settings.partitions)
            partitions = [TopicPartition(topic, index)]
        found = list(await _scan(consumer, partitions))
    finally:
        await consumer.stop()
    if link is None:
        links = {r.link_id for r in found if r.details.get("record") == record}
        found = [r for r in found if r.link_id in links]
    else:
        found = [r for r in found if r.link_id == link]
    return sorted(found, key=lambda r: r.at)


async def _scan(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> Iterable[AuditRecord]:
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    records: list[AuditRecord] = []
    while True:
        positions = {tp: await consumer.position(tp) for tp in ends}
        if all(positions[tp] >= end for tp, end in ends.items()):
            break
        batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
        for messages in batch.values():
            for message in messages:
                value = decode(message.value)
                if isinstance(value, AuditRecord):
                    records.append(value)
    return records
