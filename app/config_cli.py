"""``deskstream config check``: the sync rules against the live platforms.

Reads ``DESKSTREAM_SYNC_CONFIG``, fetches the Zendesk ticket fields and the Intercom contact
attributes with the configured connectors' credentials (read-only calls), and reports every
mismatch. Exit status 1 when there is an error, so a deployment pipeline can gate on it.
"""

from __future__ import annotations

import asyncio

import click
import httpx

from app.settings import Settings, get_settings
from connectors.intercom.client import IntercomClient
from connectors.zendesk.client import ZendeskClient
from schemas.errors import ConfigurationError
from streams.config import SyncConfig, load_sync_config
from streams.config_check import Finding, check_config

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
    findings = asyncio.run(run_check(settings, rules))
    for finding in findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow")
    errors = sum(1 for f in findings if f.level == "error")
    click.echo(f"{settings.sync_config}: {errors} error(s), {len(findings) - errors} warning(s)")
    if errors:
        raise SystemExit(1)


async def run_check(settings: Settings, rules: SyncConfig) -> list[Finding]:
    connectors = {cid: c.platform for cid, c in settings.connectors.items()}
    zendesk = settings.connectors.get(rules.connectors.zendesk)
    intercom = settings.connectors.get(rules.connectors.intercom)
    fields: list[dict[str, object]] = []
    attributes: list[str] = []
    if zendesk is not None and zendesk.platform == "zendesk":
        async with httpx.AsyncClient(timeout=30) as http:
            client = ZendeskClient(http, settings=zendesk)
            fields = [f.model_dump() for f in await client.ticket_fields()]
    if intercom is not None and intercom.platform == "intercom":
        ic = IntercomClient.from_settings(intercom)  # its own client, on the connector's URL
        try:
            attributes = [a.name for a in await ic.data_attributes("contact")]
        finally:
            await ic.aclose()
    return check_config(
        rules, connectors=connectors, zendesk_fields=fields, intercom_contact_attributes=attributes
    )
