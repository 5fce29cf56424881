"""``deskstream config check``: the sync rules against the live platforms.

Reads ``DESKSTREAM_SYNC_CONFIG``, fetches each platform's field inventory (custom case fields,
contact attributes) with the configured connectors' credentials (read-only calls), and reports
every mismatch. A rules file in the first format is read and the equivalent routes are shown.
Exit status 1 when there is an error, so a deployment pipeline can gate on it.
"""

from __future__ import annotations

import asyncio

import click
import yaml

from app.settings import Settings, get_settings
from connectors.base.adapter import FieldInventory
from connectors.base.registry import read_inventory
from schemas.errors import ConfigurationError
from streams.config import SyncConfig, load_sync_config
from streams.config_check import Finding, check_config
from streams.config_legacy import is_legacy, legacy_notice

__all__ = ["config", "run_check"]


@click.group()
def config() -> None:
    """The sync rules file."""


@config.command()
def check() -> None:
    """Validate the rules file against each platform's live field inventory."""
    settings = get_settings()
    if settings.sync_config is None:
        raise ConfigurationError(
            "DESKSTREAM_SYNC_CONFIG is not set; point it at the rules file (see "
            "config/sync.example.yaml)"
        )
    rules = load_sync_config(settings.sync_config)
    document = yaml.safe_load(settings.sync_config.read_text(encoding="utf-8"))
    if is_legacy(document):
        click.secho(f"note    {settings.sync_config}: {legacy_notice(document)}", fg="yellow")
    findings = asyncio.run(run_check(settings, rules))
    for finding in findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow")
    errors = sum(1 for f in findings if f.level == "error")
    click.echo(f"{settings.sync_config}: {errors} error(s), {len(findings) - errors} warning(s)")
    if errors:
        raise SystemExit(1)


async def run_check(settings: Settings, rules: SyncConfig) -> list[Finding]:
    connectors = {cid: c.platform for cid, c in settings.connectors.items()}
    inventories: dict[str, FieldInventory] = {}
    for platform, connector_id in rules.connectors.items():
        connector = settings.connectors.get(connector_id)
        if connector is None or connector.platform != platform:
            continue  # check_config names the mismatch
        inventory = await read_inventory(connector)
        if inventory is not None:
            inventories[platform] = inventory
    return check_config(rules, connectors=connectors, inventories=inventories)
