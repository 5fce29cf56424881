"""Fuller fetches while records pour in, Faust's answer-at-once fetches otherwise.

Faust's aiokafka consumer asks the broker for records with ``fetch_min_bytes`` 1: the broker
answers a fetch as soon as it holds one record for it. A worker that keeps up with its load
therefore fetches again as soon as it has handed on the last fetch's records, and each fetch
brings the few that arrived meanwhile; yet every fetch costs the same whatever it carries: a
request written, a response read on the consumer thread, a hand-over to the worker's event
loop, a batch begun and finished by the agents. Two workers sharing a load each took batches
about a third the size one worker took (23-25 sync inputs against 82-89), and paid those
fixed costs per record about three times over (``docs/performance.md``, "Scale-out").

A fixed ``fetch_min_bytes`` with a short ``fetch_max_wait_ms`` evens that out under load but
costs a quiet worker a fetch every few milliseconds, and makes a lone event wait out the
window at every hop (tried and left out, ``docs/performance.md``). This asks for a fuller
fetch only from a broker whose last fetch brought records **and** whose partitions grew by
at least ``FILL_MIN_RATE`` records a second (their high watermarks, which every fetch
response carries, over at least ``RATE_WINDOW_S``): then the broker holds the fetch until
``FILL_BYTES`` are there or ``FILL_WAIT_MS`` have passed. Below that rate a fetch keeps the
consumer's own settings, so a record of a steady trickle is answered at once at every hop
(holding each fetch 50 ms at one customer a second took the live benchmark's end-to-end p50
from 42 to 142 ms, against the design's 100); and the first fetch that comes back empty
returns that broker to the consumer's settings too, so an idle worker fetches as rarely as
before.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.structs import TopicPartition

__all__ = [
    "FILL_BYTES",
    "FILL_MIN_RATE",
    "FILL_WAIT_MS",
    "RATE_WINDOW_S",
    "FetchFill",
    "fill_fetches",
]

#: what a fetch from a broker that is sending records waits for, and at most how long: the
#: longest a record arriving into a busy stream is held at each hop. Of the pairs measured
#: on the two-worker sync benchmark (16 KiB / 20 ms to 256 KiB / 100 ms), the gain stopped
#: growing here (``docs/performance.md``, "Scale-out").
FILL_BYTES = 64 * 1024
FILL_WAIT_MS = 50
#: records a second, over the partitions one broker serves this consumer, from which a fetch
#: waits to fill: a 50 ms wait then gathers 25 records or more. Below it the worker has CPU
#: to spare and a record's latency counts for more than a fetch's fixed cost.
FILL_MIN_RATE = 500.0
#: the shortest span a rate is measured over, so that two fetch answers a moment apart do
#: not make one record look like a flood
RATE_WINDOW_S = 0.1

ProcFetch = Callable[[Any, int, Any], Awaitable[bool]]


class _Growth:
    """How fast one broker's partitions grow: each one's latest high watermark, the same at
    the start of the current window, and the rate the last full window measured."""

    __slots__ = ("latest", "rate", "since", "start")

    def __init__(self, now: float) -> None:
        self.since = now
        #: kept across windows: a fetch asks only for the partitions with nothing buffered
        self.latest: dict[TopicPartition, int] = {}
        self.start: dict[TopicPartition, int] = {}
        self.rate = 0.0


class FetchFill:
    """Stands in for an aiokafka ``Fetcher``'s ``_proc_fetch_request``: it sends the fetch
    request the fetcher built, with the fuller settings when the broker's last fetch brought
    records and its partitions grow fast enough, and notes whether this one brought records
    (what the wrapped method returns) and how far the partitions' high watermarks moved."""

    def __init__(
        self,
        proc: ProcFetch,
        fill_bytes: int,
        fill_wait_ms: int,
        min_rate: float = FILL_MIN_RATE,
    ) -> None:
        self._proc = proc
        self.fill_bytes = fill_bytes
        self.fill_wait_ms = fill_wait_ms
        self.min_rate = min_rate
        #: the brokers (node ids) whose last fetch brought records
        self.flowing: set[int] = set()
        self._growth: dict[int, _Growth] = {}

    def rate(self, node_id: int) -> float:
        """Records a second the broker's partitions grew by over the last full window."""
        growth = self._growth.get(node_id)
        return 0.0 if growth is None else growth.rate

    async def __call__(self, assignment: Any, node_id: int, request: Any) -> bool:
        if node_id in self.flowing and self.rate(node_id) >= self.min_rate:
            # FetchRequest keeps both as it was built: the fetcher builds one per node per
            # round, so changing this one changes no other broker's fetch.
            request._min_bytes = self.fill_bytes
            request._max_wait_ms = self.fill_wait_ms
        brought_records = await self._proc(assignment, node_id, request)
        if brought_records:
            self.flowing.add(node_id)
        else:
            self.flowing.discard(node_id)
        self._note_growth(assignment, node_id, request)
        return brought_records

    def _note_growth(self, assignment: Any, node_id: int, request: Any) -> None:
        now = time.monotonic()
        growth = self._growth.get(node_id)
        if growth is None:
            growth = self._growth[node_id] = _Growth(now)
        # the fetcher has just stored each partition's high watermark from the answer
        for topic, partitions in request.topics:
            for partition, _offset, _max_bytes in partitions:
                tp = TopicPartition(topic, partition)
                state = assignment.state_value(tp)
                if state is not None and state.highwater is not None:
                    growth.latest[tp] = state.highwater
        elapsed = now - growth.since
        if elapsed < RATE_WINDOW_S:
            return
        # a partition first seen in this window counts from the next one
        grown = sum(
            max(0, highwater - growth.start[tp])
            for tp, highwater in growth.latest.items()
            if tp in growth.start
        )
        growth.rate = grown / elapsed
        growth.since = now
        growth.start = dict(growth.latest)


def fill_fetches(
    fetcher: Any,
    fill_bytes: int = FILL_BYTES,
    fill_wait_ms: int = FILL_WAIT_MS,
    min_rate: float = FILL_MIN_RATE,
) -> FetchFill:
    """Make a started aiokafka consumer's fetcher (``AIOKafkaConsumer._fetcher``) ask for
    fuller fetches while records pour in. Its fetch loop looks the method up for every
    request, so this holds from its next fetch on."""
    fill = FetchFill(fetcher._proc_fetch_request, fill_bytes, fill_wait_ms, min_rate)
    fetcher._proc_fetch_request = fill
    return fill
