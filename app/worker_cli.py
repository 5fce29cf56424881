"""``deskstream worker``: one Faust worker with its web server (webhooks, health, metrics).

Run as many as you like with the same ``DESKSTREAM_APP_ID``: they form one consumer group and
share the partitions; tables move with their partitions.
"""

from __future__ import annotations

import click

from app.settings import get_settings

__all__ = ["worker"]


@click.command()
@click.option("--web-port", type=int, default=None, help="Port of the worker's web server.")
def worker(web_port: int | None) -> None:
    """Run a worker: webhook ingest, the stream processors and /health, /ready, /metrics."""
    import faust

    from app.faust_app import build_app
    from app.gc_pauses import collect_less_often, freeze_startup_heap, observe_gc_pauses
    from app.logs import configure_logging
    from schemas.codec import compile_codecs

    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    configure_logging(settings.log_level)
    collect_less_often()
    bundle = build_app(settings)
    compile_codecs()  # before the first message, and into the heap frozen at start-up
    observe_gc_pauses(bundle.metrics.gc_pause_seconds)

    class Worker(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            # Built and kept for the worker's life: a full collection need not walk it
            # again (about 90 ms each, every answer waiting, before: app/gc_pauses.py).
            bundle.metrics.gc_frozen_objects.set(freeze_startup_heap())

    Worker(
        bundle.app, loglevel=settings.log_level.upper(), override_logging=False
    ).execute_from_commandline()
