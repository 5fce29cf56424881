"""The worker's garbage-collector pauses: fewer and shorter, and measured.

CPython's cyclic collector stops the event loop while it runs. A full (generation 2)
collection walks every tracked object, and a started worker holds hundreds of thousands that
live as long as it does: modules, Faust's app and agents, pydantic's and fastavro's compiled
schemas, the connectors. Measured on a worker under ``bench.ingest_pipeline`` (2026-12-03,
``docs/performance.md``): 5 full collections after start-up, 392-475 ms in all, each about
90 ms: a stop of every webhook answer in flight longer than the whole ack-latency target
(p99 < 25 ms). With the start-up heap frozen (``gc.freeze``: moved to a permanent generation
the collector skips): 48-69 ms in all, no pause over 25 ms. With young collections every
10,000 allocations as well: no full collection after start-up, and the process's time in the
collector from ≈ 0.9 s to ≈ 0.2 s of ≈ 23 s of CPU.

Freezing is for what start-up built and keeps. What the worker creates later (table entries,
caches, batches) is collected as before, and reference counting frees frozen objects as
always; only one that start-up built and a later change leaves in a cycle stays in memory, a
bounded amount that start-up made once.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

__all__ = [
    "YOUNG_COLLECTION_EVERY",
    "collect_less_often",
    "freeze_startup_heap",
    "observe_gc_pauses",
]

#: container allocations (net of frees) between two young collections; CPython's default is
#: 700. A worker allocates and frees tens of objects per record, almost all freed by their
#: reference count; collecting every 700 walked the batch in flight about 900 times a run
#: and promoted it to the older generations, whose growth set off the full collections.
YOUNG_COLLECTION_EVERY = 10_000


def collect_less_often() -> None:
    """Young collections every ``YOUNG_COLLECTION_EVERY`` allocations; the older generations'
    thresholds (every 10 of the younger's) unchanged."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then keep the collector off the rest; returns how
    many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def observe_gc_pauses(pauses: Histogram) -> Callable[[], None]:
    """Time every collection into ``pauses`` (labelled by ``generation``) until the function
    returned is called.

    Once per process: each call adds a callback, and two would count each pause twice.
    """
    started = 0.0
    by_generation = {generation: pauses.labels(str(generation)) for generation in range(3)}

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started)

    gc.callbacks.append(on_collection)
    return lambda: gc.callbacks.remove(on_collection)
