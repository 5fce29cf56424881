"""``deskstream dlq list | retry``: what could not be written, and sending it again.

``list`` reads the whole dead-letter topic and changes nothing. ``retry`` re-sends each dead
letter's command to its platform's commands topic (attempt + 1) and commits its progress in
the consumer group ``<app id>-dlq-retry``, so a dead letter is retried once per ``retry`` run
and a second run picks up only what was dead-lettered since. Sinks are idempotent, so a retry
of a command that did get through in the end writes nothing twice.
"""

from __future__ import annotations

import asyncio

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.dead_letters import Unreadable, dlq_partitions, read_letter, retry_group
from app.kafka_connection import bootstrap_servers
from app.schema_registry import install_schema_registry
from app.settings import Settings, get_settings
from schemas.codec import encode
from schemas.models import DeadLetter
from streams.emit import command_key

__all__ = ["dlq", "read_letters"]


@click.group()
def dlq() -> None:
    """Dead-lettered commands."""


@dlq.command("list")
@click.option("--platform", default=None, help="Only this target platform.")
def list_letters(platform: str | None) -> None:
    """Show every dead letter: when, where, why, after how many attempts."""
    settings = get_settings()
    install_schema_registry(settings, register=False)  # records name their schema ids
    letters = asyncio.run(read_letters(settings))
    shown = [entry for entry in letters if platform in (None, _platform_of(entry))]
    for letter in shown:
        if isinstance(letter, Unreadable):
            click.echo(
                f"unreadable command from {letter.source_topic} ({len(letter.value)} bytes): "
                f"{letter.error}; `dlq retry` sends it back once every worker can read it"
            )
            continue
        command = letter.command
        target = command.target
        where = f"{target.platform.value}:{target.entity_type.value}"
        click.echo(
            f"{letter.last_failed_at:%Y-%m-%d %H:%M:%S}  {where}"
            f"  {command.action.value:7} link={command.link_id} attempts={letter.attempts}"
            f"  {letter.error_kind}: {letter.error_message}"
        )
    click.echo(f"{len(shown)} dead letter(s)")


@dlq.command()
@click.option("--dry-run", is_flag=True, help="Show what would be re-sent; send nothing.")
def retry(dry_run: bool) -> None:
    """Re-send the commands dead-lettered since the last retry."""
    settings = get_settings()
    install_schema_registry(settings)  # it writes commands, framed as the workers do
    sent = asyncio.run(_retry(settings, dry_run=dry_run))
    click.echo(f"{'would re-send' if dry_run else 're-sent'} {sent} command(s)")


def _platform_of(letter: DeadLetter | Unreadable) -> str:
    if isinstance(letter, Unreadable):
        return letter.source_topic.rsplit(".", 1)[-1]
    return letter.command.target.platform.value


async def read_letters(settings: Settings) -> list[DeadLetter | Unreadable]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=None,
        # a read from the start: an assignment's own offset lookup must not land at the end
        # (aiokafka applies any lookup to a partition waiting for one; KAFKA-7703)
        auto_offset_reset="earliest",
    )
    try:  # stopped even when the start failed, so nothing is left unclosed
        await consumer.start()
        partitions = dlq_partitions(settings)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return await _drain(consumer, partitions)
    finally:
        await consumer.stop()


async def _drain(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> list[DeadLetter | Unreadable]:
    ends = await consumer.end_offsets(partitions)
    letters: list[DeadLetter | Unreadable] = []
    while True:
        positions = {tp: await consumer.position(tp) for tp in partitions}
        if all(positions[tp] >= ends[tp] for tp in partitions):
            return letters
        batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
        for records in batch.values():
            letters += [read_letter(r.value, list(r.headers)) for r in records]


async def _retry(settings: Settings, *, dry_run: bool) -> int:
    servers = bootstrap_servers(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=retry_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    try:  # both stopped even when a start failed, so nothing is left unclosed
        await consumer.start()
        await producer.start()
        partitions = dlq_partitions(settings)
        consumer.assign(partitions)
        letters = await _drain(consumer, partitions)
        if dry_run:
            return len(letters)
        for letter in letters:
            if isinstance(letter, Unreadable):  # back where it came from, byte for byte
                await producer.send_and_wait(letter.source_topic, letter.value, key=letter.key)
                continue
            command = letter.command.model_copy(update={"attempt": letter.command.attempt + 1})
            topic = settings.topic(f"commands.{command.target.platform.value}")
            await producer.send_and_wait(topic, encode(command), key=command_key(command).encode())
        await consumer.commit()  # only after every re-send was acknowledged
        return len(letters)
    finally:
        await producer.stop()
        await consumer.stop()
