"""``deskstream doctor [--worker URL]``: each connector's webhook, polling and credential state,
one block per connector, for an operator wondering why a platform is quiet.

- **webhooks**: the connector's mode (``webhooks`` / ``polling`` / ``both``), where the
  platform posts, whether a signing secret is readable; with ``--worker``, that worker's view:
  seconds since the last delivery and whether its webhook watch finds the platform silent
  (``app.webhook_watch``: no delivery while writes and polls found changes);
- **polling**: the feeds the connector runs (``connectors.base.registry.source_kinds``) and,
  from ``<prefix>.sources``, when each last stored a position and how far its source time is;
- **credential**: one read-only call with the connector's credentials (the field inventory
  ``config check`` reads), ok or the platform's answer.

Exit status 1 when a credential fails or a configuration contradicts itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from typing import Any

import click
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.kafka_connection import bootstrap_servers
from app.settings import Settings, get_settings
from connectors.base.registry import delivery_mode, read_inventory, source_kinds
from connectors.base.settings import ConnectorSettings
from schemas.errors import DeskstreamError

__all__ = ["doctor", "stored_positions"]


@click.command()
@click.option("--worker", "worker_url", default=None, help="A worker's URL, for its own view.")
def doctor(worker_url: str | None) -> None:
    """Each connector's webhook, polling and credential state."""
    settings = get_settings()
    lines, failed = asyncio.run(_report(settings, worker_url))
    for line in lines:
        click.echo(line)
    if failed:
        raise SystemExit(1)


async def stored_positions(bootstrap: str, topic: str, partitions: int) -> dict[str, Any]:
    """The newest stored record of every source name in ``topic`` (``app.source_positions``)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: dict[str, Any] = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        async with asyncio.timeout(30):
            while await behind():
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        try:
                            value = json.loads(record.value or b"{}")
                        except ValueError:
                            continue
                        if isinstance(value, dict) and record.key:
                            found[record.key.decode(errors="replace")] = value
    finally:
        await consumer.stop()
    return found


def _age(stamp: Any) -> str:
    if not isinstance(stamp, str):
        return "unknown"
    try:
        seconds = time.time() - datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return "unknown"
    return f"{seconds:.0f} s ago"


async def _worker_view(url: str) -> dict[str, dict[str, float]]:
    """``{metric: {connector: value}}`` of the webhook watch gauges on ``url``/metrics."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    view: dict[str, dict[str, float]] = {}
    pattern = re.compile(
        r"^(deskstream_webhooks_silent|deskstream_webhook_last_delivery_age_seconds)"
        r'\{connector="([^"]+)"\} (\S+)$',
        re.M,
    )
    for metric, connector, value in pattern.findall(text):
        view.setdefault(metric, {})[connector] = float(value)
    return view


def _webhooks(cid: str, connector: ConnectorSettings, view: dict[str, dict[str, float]]) -> str:
    mode = delivery_mode(connector)
    if mode == "polling":
        return f"mode polling: /webhooks/{cid} refuses deliveries (404); nothing is expected"
    try:
        secrets = len(connector.signing_secrets())
        secret = f"{secrets} signing secret(s) readable" if secrets else "NO signing secret"
    except DeskstreamError as exc:
        secret = f"signing secret unreadable: {exc}"
    line = f"mode {mode}: the platform posts to /webhooks/{cid}; {secret}"
    if view:
        age = view.get("deskstream_webhook_last_delivery_age_seconds", {}).get(cid)
        silent = view.get("deskstream_webhooks_silent", {}).get(cid)
        seen = "no delivery since the worker started" if age is None else f"last {age:.0f} s ago"
        verdict = "SILENT (see the worker's warning)" if silent == 1 else "sending"
        line += f"; worker: {seen}, {verdict}"
    return line


def _polling(cid: str, connector: ConnectorSettings, stored: dict[str, Any]) -> tuple[str, bool]:
    try:
        kinds = source_kinds(cid, connector)
    except DeskstreamError as exc:
        return f"misconfigured: {exc}", True
    if not kinds:
        return "no feed (mode webhooks)", False
    parts = []
    for kind in kinds:
        record = stored.get(f"{cid}.{kind}")
        if record is None:
            parts.append(f"{kind}: never stored a position (not run yet)")
        else:
            parts.append(
                f"{kind}: position stored {_age(record.get('stored_at'))}, source time "
                f"{record.get('position_time') or 'unknown'}"
            )
    return "; ".join(parts), False


async def _credential(connector: ConnectorSettings) -> tuple[str, bool]:
    try:
        inventory = await read_inventory(connector)
    except DeskstreamError as exc:
        return f"FAILED: {exc}", True
    except httpx.HTTPError as exc:
        return f"FAILED: {type(exc).__name__} reaching {connector.api_base_url}", True
    if inventory is None:
        return "not checked (no read this version can make)", False
    if not inventory.read:
        return "FAILED: the account could not be read with these credentials", True
    return f"ok (read the account's {len(inventory.case_fields)} case fields)", False


async def _report(settings: Settings, worker_url: str | None) -> tuple[list[str], bool]:
    if not settings.connectors:
        return ["no connector is configured (DESKSTREAM_CONNECTORS__<id>__PLATFORM)"], True
    try:
        stored = await stored_positions(
            bootstrap_servers(settings), settings.topic("sources"), settings.partitions
        )
    except Exception as exc:  # Kafka away: the rest of the report still helps
        stored = {}
        kafka_note = f"(positions unknown: Kafka not readable: {type(exc).__name__})"
    else:
        kafka_note = ""
    view = await _worker_view(worker_url) if worker_url else {}
    lines, failed = [], False
    for cid, connector in sorted(settings.connectors.items()):
        polling, bad_config = _polling(cid, connector, stored)
        credential, bad_credential = await _credential(connector)
        failed |= bad_config or bad_credential
        lines += [
            f"{cid} ({connector.platform})",
            f"  webhooks    {_webhooks(cid, connector, view)}",
            f"  polling     {polling} {kafka_note}".rstrip(),
            f"  credential  {credential}",
        ]
    return lines, failed
