"""``deskstream replay``: a time range of a canonical topic into a new topic or Parquet files.

    deskstream replay --from 2026-11-01 --to 2026-11-08 --out out/
    deskstream replay --from 2026-11-20T09:00Z --platform zendesk --entity-type case \\
        --out-topic deskstream.events.replay-nov20

Reads by record timestamp (``--from`` inclusive, ``--to`` exclusive), outside any consumer
group (the workers' committed offsets are never touched), from offsets fixed when the replay
first starts. Interrupted (Ctrl-C, a kill, ``--stop-after``), it resumes where its checkpoint
says when run again with the same arguments, writing no row or record twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import click

from app.replay.run import ReplayResult, run_replay
from app.schema_registry import install_schema_registry
from app.settings import Settings, get_settings
from schemas.errors import ConfigurationError
from schemas.models import EntityType, Platform
from streams.replay import ReplayFilter, ReplayJob, parse_time

__all__ = ["replay"]


def _ms(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return int(parse_time(text).timestamp() * 1000)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command()
@click.option("--topic", default=None, help="Topic to read (full name). [default: the events]")
@click.option("--from", "start", default=None, help="First record time (ISO 8601; UTC if bare).")
@click.option("--to", "end", default=None, help="Records before this time (default: the end).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for Parquet files (date=.../entity_type=.../part-N.parquet).",
)
@click.option("--out-topic", default=None, help="Topic to copy the records to (same keys).")
@click.option("--platform", multiple=True, type=click.Choice([p.value for p in Platform]))
@click.option("--entity-type", multiple=True, type=click.Choice([e.value for e in EntityType]))
@click.option("--event-type", multiple=True, help="The platform's event name (repeatable).")
@click.option("--link", multiple=True, help="Link id (repeatable).")
@click.option("--entity-id", multiple=True, help="The record's id on its platform (repeatable).")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint of an --out-topic replay [default: <state dir>/replay/<topic>.json].",
)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--stop-after",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after reading this many records, as an interruption would (run again to resume).",
)
def replay(
    topic: str | None,
    start: str | None,
    end: str | None,
    out: Path | None,
    out_topic: str | None,
    platform: tuple[str, ...],
    entity_type: tuple[str, ...],
    event_type: tuple[str, ...],
    link: tuple[str, ...],
    entity_id: tuple[str, ...],
    checkpoint: Path | None,
    checkpoint_every: int,
    stop_after: int | None,
) -> None:
    """Replay a time range of a canonical topic into Parquet files or another topic."""
    settings = get_settings()
    if (out is None) == (out_topic is None):
        raise click.UsageError("give exactly one output: --out FOLDER or --out-topic TOPIC")
    install_schema_registry(settings, register=False)  # records name their schema ids
    source = topic or settings.topic("events")
    if out_topic == source:
        raise ConfigurationError(
            f"--out-topic {out_topic} is the topic being replayed; name a new topic"
        )
    start_ms, end_ms = _ms(start, "--from"), _ms(end, "--to")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    job = ReplayJob(
        topic=source,
        start_ms=start_ms,
        end_ms=end_ms,
        filter=ReplayFilter.of(
            platforms=platform,
            entity_types=entity_type,
            event_types=event_type,
            links=link,
            entity_ids=entity_id,
        ),
        output="parquet" if out is not None else "topic",
        target=str(out.resolve()) if out is not None else str(out_topic),
    )
    if out is not None:
        from app.replay.parquet import CHECKPOINT_NAME

        checkpoint_path = out / CHECKPOINT_NAME
    else:
        checkpoint_path = checkpoint or settings.state_dir / "replay" / f"{out_topic}.json"
    click.echo(f"replaying {job.describe()} into {job.target}", err=True)
    result, signalled = asyncio.run(
        _run(settings, job, checkpoint_path, checkpoint_every, stop_after)
    )
    _report(result, checkpoint_path)
    if signalled:
        sys.exit(130)


async def _run(
    settings: Settings,
    job: ReplayJob,
    checkpoint_path: Path,
    checkpoint_every: int,
    stop_after: int | None,
) -> tuple[ReplayResult, bool]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on every platform
            loop.add_signal_handler(signum, stop.set)
    result = await run_replay(
        settings,
        job,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        stop_after=stop_after,
        stop=stop,
    )
    return result, stop.is_set()


def _report(result: ReplayResult, checkpoint_path: Path) -> None:
    c = result.checkpoint
    if result.already_done:
        click.echo(f"already complete ({checkpoint_path}): {c.written:,} written; nothing to do")
        return
    if result.removed_files:
        click.echo(f"removed {result.removed_files} file(s) of a flush an interruption cut short")
    if result.lost_to_retention:
        click.echo(
            f"warning: {result.lost_to_retention:,} records of the range were removed by the "
            "topic's retention before they were replayed",
            err=True,
        )
    click.echo(
        f"written {c.written:,}; left out: {c.filtered:,} by the filters, {c.outside:,} "
        f"stamped outside the range, {c.unreadable:,} unreadable"
    )
    if not c.done:
        click.echo(
            f"stopped with {c.remaining:,} records to go; run the same command again to resume "
            f"(checkpoint {checkpoint_path})"
        )
