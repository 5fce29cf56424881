"""``deskstream topics create``: make every topic of the design, report drift."""

from __future__ import annotations

import asyncio

import click

from app.kafka_connection import bootstrap_servers
from app.settings import get_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs

__all__ = ["topics"]


@click.group()
def topics() -> None:
    """Kafka topics of Deskstream."""


@topics.command()
def create() -> None:
    """Create missing topics (idempotent) and report drift from the wanted configs."""
    settings = get_settings()
    servers = bootstrap_servers(settings)
    specs = topic_specs(settings)
    report = asyncio.run(ensure_topics(servers, specs))
    for spec in specs:
        state = "created" if spec.name in report.created else "exists"
        click.echo(
            f"{state:8} {spec.name:42} partitions={spec.partitions} "
            f"replication={spec.replication} {spec.configs.get('cleanup.policy', '')}"
        )
    if report.drift:
        click.echo(f"\n{len(report.drift)} difference(s) from the wanted layout:", err=True)
        for drift in report.drift:
            click.echo(f"  {drift}", err=True)
        click.echo(
            "Partition counts are never changed automatically (it would re-map keys); "
            "fix configs with kafka-configs or recreate the topic.",
            err=True,
        )
        raise SystemExit(2)
    click.echo(f"\n{len(specs)} topics on {servers}: all as wanted.")
