"""What a benchmark's server process takes from a started worker, whatever it serves.

``bench.http_servers`` measured the same aiohttp application far apart in a process that had
built a Faust app and in one that had not, so every server process a benchmark compares with
the worker (``bench.http_servers``' servers, ``bench.bare_ingest``'s acceptor) builds one and
keeps it, and takes the worker's collector settings once it is ready.
"""

from __future__ import annotations

from typing import Any, cast

from app.gc_pauses import collect_less_often, freeze_startup_heap

__all__ = ["faust_app", "ready_as_a_worker"]


def faust_app() -> Any:
    """A Faust app as the worker has it: its aiohttp driver and the Prometheus monitor."""
    import faust
    from faust.web.drivers.aiohttp import Web as AiohttpWeb
    from prometheus_client import CollectorRegistry

    from app.faust_metrics import setup_faust_metrics

    app = faust.App("bench-worker-like", broker="kafka://127.0.0.1:9")
    setup_faust_metrics(app, CollectorRegistry(), "/metrics")
    app.sensors.add(app.monitor)  # what the app's start does: views report to the monitor
    assert cast(AiohttpWeb, app.web).cors is not None  # the web server start's CORS hook
    return app


def ready_as_a_worker() -> None:
    """The worker's collector settings (``app.gc_pauses``), taken as it starts."""
    collect_less_often()
    freeze_startup_heap()
