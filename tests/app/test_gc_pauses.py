"""The worker's garbage-collector settings: pauses timed by generation, the start-up heap
frozen out of every later collection."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

from prometheus_client import CollectorRegistry

from app.gc_pauses import observe_gc_pauses
from app.metrics import Metrics


def _count(metrics: Metrics, generation: int) -> float:
    value = metrics.registry.get_sample_value(
        "deskstream_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return value or 0.0


def test_each_collection_is_timed_under_its_generation_until_stopped() -> None:
    metrics = Metrics(CollectorRegistry())
    stop = observe_gc_pauses(metrics.gc_pause_seconds)
    try:
        full_before = _count(metrics, 2)
        gc.collect(2)
        gc.collect(2)
        young_before = _count(metrics, 0)
        gc.collect(0)
    finally:
        stop()
    assert _count(metrics, 2) == full_before + 2
    assert _count(metrics, 0) >= young_before + 1
    seconds = metrics.registry.get_sample_value(
        "deskstream_gc_pause_seconds_sum", {"generation": "2"}
    )
    assert seconds is not None
    assert seconds > 0
    counted = _count(metrics, 2)
    gc.collect(2)
    assert _count(metrics, 2) == counted  # stopped: the callback is gone


def test_frozen_start_up_objects_are_left_out_of_collections_and_young_ones_wait() -> None:
    # In a process of its own: freezing the test runner's heap would outlive the test.
    script = textwrap.dedent(
        """
        import gc
        from app.gc_pauses import YOUNG_COLLECTION_EVERY, collect_less_often, freeze_startup_heap

        class Node:
            pass

        built_at_start = Node()
        built_at_start.me = built_at_start  # a cycle: only the collector could free it
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10), gc.get_threshold()
        frozen = freeze_startup_heap()
        built_later = Node()
        tracked = {id(o) for o in gc.get_objects()}
        print(frozen, gc.get_freeze_count(), id(built_at_start) in tracked,
              id(built_later) in tracked)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    frozen, freeze_count, start_tracked, later_tracked = done.stdout.split()
    assert int(frozen) == int(freeze_count) > 1000  # start-up's modules, at least
    assert start_tracked == "False"
    assert later_tracked == "True"
