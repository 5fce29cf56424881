"""How late the worker's event loop runs what is ready: every webhook answer waits that long
on top of its own work.

One event loop runs everything a worker does (the webhook handlers, the agents, Faust's
conductor, the producer's sender), so anything that keeps the loop busy for a while delays
every answer in flight: a long batch, a garbage collection, a CPU shared with too much else.
The acknowledge histogram (``deskstream_webhook_ack_seconds``) shows that answers were late;
this probe shows whether the loop itself was, which tells an operator where to look: a late
loop is the worker's own CPU (add workers, look at ``deskstream_gc_pause_seconds``), answers
late on a loop on time are Kafka's acks=all round trips (the brokers, the network).

A probe every ``PROBE_EVERY_S`` asks to wake after that long and records how much later it
woke. The loop's own timer resolution (about a millisecond: ``epoll`` waits in whole ms) is
the floor of every sample. A stop shorter than the probe's period is caught in proportion to
its share of the time, so the histogram's tail is a sample of the stops, not a count of them.
Its cost: 20 wake-ups a second, under 0.1 % of a core.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Histogram

__all__ = ["PROBE_EVERY_S", "watch_loop_lag"]

#: how often the probe asks to be woken, seconds
PROBE_EVERY_S = 0.05


async def watch_loop_lag(lag: Histogram, every: float = PROBE_EVERY_S) -> None:
    """Observe into ``lag``, forever, how late each of the probe's wake-ups came."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every
        await asyncio.sleep(every)
        lag.observe(max(0.0, loop.time() - due))
