"""``deskstream reconcile [--since 2h] [--connector id …]``: one reconciliation pass now, beside
the scheduled one (the connectors' ``reconcile`` sources): every Zendesk ticket and user and
every Intercom conversation and contact modified since ``--since`` (1 hour by default) is
re-read and sent as a reconciliation (``connectors.base.source.RECONCILE_EVENT_TYPE``) to the
raw topic; the workers' sync stage compares each synced field with what the link believes and
repairs what drifted through the normal planner path, audited as ``reconciled`` with the cause
it can tell (``deskstream audit trace`` shows it).

Zendesk's export holds back its most recent minute: a change made in the last minute is seen
by the next pass, not this one.

Salesforce's reconciliation compares with what it read before, which lives in its stored
position (``Source.remembers``): a pass from here starts from the worker's stored position of
``<connector>.reconcile`` with ``since`` added, and stores nothing (what it sends again later
has the same delivery ids). Without a stored position every record is sent as a plain copy.
Reads are throttled as a backfill's (``app.pull``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from app.backfill_cli import parse_since
from app.kafka_connection import bootstrap_servers
from app.progress import Progress
from app.pull import RawWriter, pull_once, share_option, yield_to_platform
from app.settings import Settings, get_settings
from app.source_positions import slot_of
from connectors.base.registry import build_source
from connectors.base.settings import SourceSettings
from schemas.errors import ConfigurationError

__all__ = ["RECONCILABLE", "reconcile", "run_reconcile"]

#: platforms whose reconciliation runs from here
RECONCILABLE = ("zendesk", "intercom", "salesforce")


@click.command()
@click.option("--since", default="1h", show_default=True, help="90d, 12h, 30m, or an ISO date.")
@click.option("--connector", "connector_ids", multiple=True, help="Only these (all by default).")
@share_option
def reconcile(since: str, connector_ids: tuple[str, ...], share: float) -> None:
    """Re-read what changed since a time and repair what drifted."""
    settings = get_settings()
    records = asyncio.run(run_reconcile(settings, since=since, only=connector_ids, share=share))
    click.echo(f"reconcile: {records} records re-read and sent; the workers repair any drift")


async def run_reconcile(
    settings: Settings, *, since: str, only: tuple[str, ...] = (), share: float = 0.1
) -> int:
    unknown = sorted(set(only) - set(settings.connectors))
    if unknown:
        raise ConfigurationError(
            f"no connector {', '.join(unknown)} is configured (configured: "
            f"{', '.join(sorted(settings.connectors)) or 'none'})"
        )
    start = parse_since(since, now=datetime.now(UTC).timestamp())
    total = 0
    async with RawWriter(
        bootstrap_servers(settings), settings.topic("raw"), settings.topic("sources")
    ) as writer:
        for connector_id, connector in sorted(settings.connectors.items()):
            if only and connector_id not in only:
                continue
            if connector.platform not in RECONCILABLE:
                click.echo(
                    f"{connector_id} ({connector.platform}): reconciles on its own schedule "
                    "or not at all in this version; skipped",
                    err=True,
                )
                continue
            source = build_source(
                connector_id,
                connector.model_copy(
                    update={
                        "sources": connector.sources
                        | {"reconcile": SourceSettings(budget_share=share)}
                    }
                ),
                "reconcile",
            )
            account = yield_to_platform(source, connector_id)  # noqa: F841 - kept for the read
            progress = Progress(f"reconcile {connector_id}")
            stored = None
            if source.remembers:
                slot = slot_of(source.name, settings.partitions)
                stored = await writer.positions.load(source.name, slot)
            try:
                result = await pull_once(
                    source,
                    {**(stored or {}), "since": start},
                    publish=writer.publish,
                    store=None,
                    progress=progress,
                )
            finally:
                await source.aclose()
            progress.finish(f"reconcile {connector_id}: {result.records} records re-read")
            total += result.records
    return total
