"""``deskstream backfill --route FROM->TO [--since …] [--filter field=value …]``: bring the
existing records of a route's source platform through the pipeline, e.g. every open Intercom
conversation (``--route intercom->zendesk --filter state=open``) or the last 90 days of
Zendesk tickets (``--route zendesk->salesforce --since 90d``).

The records are read once (``connectors.base.registry.build_backfill``) and written to the raw
topic as the platform's polls write them, so the workers take them through the normal
pipeline: the route's rules decide what is created (the backfill creates nothing by itself),
and a record already synced changes nothing. Run twice, or beside the polls, it creates
nothing twice: the same records have the same event ids, and links and mirrors are
idempotent.

Resumable: the read's position is stored in ``<prefix>.sources`` under
``backfill.<from>-<to>.<digest of since and filters>`` after every page Kafka acknowledged;
an interrupted run (Ctrl-C, a crash, a kill) started again with the same arguments resumes
there. A completed run is not read again unless ``--again``.

Throttled: ``--share`` of the source connector's rate limit at most, yielding when the
platform reports under half its calls left, and waiting while the workers are more than
``--max-lag`` records behind (``app.pull``): live traffic keeps priority. Its records are
marked (``BACKFILL_HEADER``), so their commands wait in the sinks while live ones run
(``app.agents.lanes``). The progress line on
stderr shows done / total, the rate and the time left.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import click

from app.kafka_connection import bootstrap_servers
from app.progress import Progress
from app.pull import LagGate, PullResult, RawWriter, pull_once, share_option, yield_to_platform
from app.settings import Settings, get_settings
from app.source_positions import slot_of
from connectors.base.registry import build_backfill
from connectors.base.settings import SourceSettings
from connectors.base.source import SourceBatch, marked_backfill
from schemas.errors import ConfigurationError
from streams.config import Route, load_sync_config

__all__ = ["backfill", "backfill_name", "parse_since", "run_backfill"]

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, *, now: float) -> int | None:
    """``90d``, ``12h``, ``30m``, ``45s`` before ``now``, or an ISO date or time (UTC unless
    it says otherwise); None reads everything."""
    if text is None:
        return None
    found = _AGO.match(text.strip())
    if found:
        return int(now) - int(found.group(1)) * _UNIT_S[found.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r} is neither a duration (90d, 12h, 30m, 45s) nor an ISO date or "
            "time (2026-09-01, 2026-09-01T08:00:00Z)"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _filters(pairs: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise ConfigurationError(
                f"--filter {pair!r} is not field=value; e.g. --filter state=open"
            )
        found[field.strip()] = value.strip()
    return found


def backfill_name(route: Route, since: str | None, filters: dict[str, str]) -> str:
    """The key of the read's stored position: the same arguments resume the same read."""
    digest = hashlib.sha256(
        json.dumps({"since": since, "filters": filters}, sort_keys=True).encode()
    ).hexdigest()[:10]
    return f"backfill.{route.source}-{route.target}.{digest}"


def _route(settings: Settings, text: str) -> Route:
    if settings.sync_config is None:
        raise ConfigurationError(
            "DESKSTREAM_SYNC_CONFIG is not set; a backfill follows a route of the rules file"
        )
    rules = load_sync_config(settings.sync_config)
    parts = re.split(r"\s*(?:->|→|:)\s*", text.strip())
    source, target = [*parts, ""][:2] if len(parts) <= 2 else ("", "")
    for route in rules.routes:
        if (route.source, route.target) == (source, target):
            return route
    known = ", ".join(f"{r.source}->{r.target}" for r in rules.routes)
    raise ConfigurationError(
        f"--route {text!r} is not a route of {settings.sync_config} (its routes: {known})"
    )


@click.command()
@click.option("--route", "route_text", required=True, help="FROM->TO, a route of the rules file.")
@click.option("--since", default=None, help="How far back: 90d, 12h, 30m, or an ISO date.")
@click.option("--filter", "filter_pairs", multiple=True, help="field=value; several: all hold.")
@share_option
@click.option(
    "--max-lag",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    help="Wait while the workers are more records behind than this.",
)
@click.option(
    "--page-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Records per read: a position is stored after each.",
)
@click.option("--again", is_flag=True, help="Read everything again after a completed run.")
def backfill(
    route_text: str,
    since: str | None,
    filter_pairs: tuple[str, ...],
    share: float,
    max_lag: int,
    page_size: int,
    again: bool,
) -> None:
    """Bring a route's existing records through the pipeline (resumable, throttled)."""
    settings = get_settings()
    route = _route(settings, route_text)
    result = asyncio.run(
        run_backfill(
            settings,
            route,
            since=since,
            filters=_filters(filter_pairs),
            share=share,
            max_lag=max_lag,
            page_size=page_size,
            again=again,
        )
    )
    if not result.complete:
        raise SystemExit(1)


async def run_backfill(
    settings: Settings,
    route: Route,
    *,
    since: str | None,
    filters: dict[str, str],
    share: float = 0.1,
    max_lag: int = 10,
    page_size: int = 100,
    again: bool = False,
    progress: Progress | None = None,
) -> PullResult:
    rules = load_sync_config(settings.sync_config) if settings.sync_config else None
    connector_id = rules.connectors.get(route.source) if rules else None
    connector = settings.connectors.get(connector_id or "")
    if connector_id is None or connector is None:
        raise ConfigurationError(
            f"no {route.source} connector is configured for the route {route.source}->"
            f"{route.target}; set DESKSTREAM_CONNECTORS__<id>__PLATFORM={route.source}"
        )
    bootstrap = bootstrap_servers(settings)
    name = backfill_name(route, since, filters)
    slot = slot_of(name, settings.partitions)
    raw = settings.topic("raw")
    async with RawWriter(bootstrap, raw, settings.topic("sources")) as writer:
        stored: dict[str, Any] = await writer.positions.load(name, slot) or {}
        if stored.get("complete") and not again:
            click.echo(
                f"backfill {name} already complete ({stored.get('done', 0)} records); run it "
                "with --again to read everything again",
                err=True,
            )
            return PullResult(complete=True)
        resume = None if again or not stored or stored.get("complete") else stored
        done = int(resume.get("done", 0)) if resume else 0
        if resume:
            click.echo(f"backfill {name}: resuming after {done} records", err=True)
        source = build_backfill(
            connector_id,
            connector,
            SourceSettings(budget_share=share, batch_size=page_size),
            since=parse_since(since, now=datetime.now(UTC).timestamp()),
            filters=filters,
        )
        account = yield_to_platform(source, connector_id)  # noqa: F841 - kept for the read
        shown = progress or Progress(f"backfill {route.source}->{route.target}", done=done)
        shown.done = max(shown.done, done)
        gate = LagGate(
            bootstrap,
            settings.app_id,
            [raw, settings.topic("sync"), settings.topic(f"commands.{route.target}")],
            partitions=settings.partitions,
            max_lag=max_lag,
        )

        async def store(batch: SourceBatch) -> None:
            position = dict(batch.position) | {
                "done": shown.done + len(batch.records),
                "complete": batch.caught_up,
            }
            await writer.positions.store(name, slot, SourceBatch([], position))

        try:
            async with gate:
                result = await pull_once(
                    source,
                    resume,
                    publish=lambda records: writer.publish([marked_backfill(r) for r in records]),
                    store=store,
                    progress=shown,
                    gate=gate,
                )
        finally:
            await source.aclose()
    shown.finish(
        f"backfill {name}: {result.records} records sent in {result.batches} pages "
        f"({shown.rate:.1f}/s), {result.waited_s:.0f} s waiting for live traffic; the workers "
        "take them through the pipeline"
    )
    return result
