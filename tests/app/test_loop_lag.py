"""The event-loop lag probe (``app.loop_lag``): a loop kept busy shows as a late wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import CollectorRegistry

from app.loop_lag import watch_loop_lag
from app.metrics import Metrics

PROBE_S = 0.01
SERIES = "deskstream_event_loop_lag_seconds"


def _wake_ups(registry: CollectorRegistry, *, later_than: str) -> float:
    """Wake-ups observed later than ``later_than`` seconds (a bucket's bound)."""
    total = registry.get_sample_value(f"{SERIES}_count") or 0.0
    return total - (registry.get_sample_value(f"{SERIES}_bucket", {"le": later_than}) or 0.0)


async def test_a_loop_held_busy_is_seen_as_a_wake_up_that_late() -> None:
    registry = CollectorRegistry()
    lag = Metrics(registry).loop_lag_seconds
    probe = asyncio.ensure_future(watch_loop_lag(lag, every=PROBE_S))
    try:
        await asyncio.sleep(0)  # the probe asks to be woken in PROBE_S
        # The loop held, as a long batch would: the probe can wake only once this returns.
        time.sleep(0.3)  # noqa: ASYNC251
        await asyncio.sleep(PROBE_S)  # due after the probe's own, overdue, wake-up
    finally:
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    # its first wake-up came at least 0.29 s late: over the 0.25 s bucket
    assert _wake_ups(registry, later_than="0.25") >= 1
