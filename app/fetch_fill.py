"""Fuller fetches while records flow, Faust's answer-at-once fetches while they do not.

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
fetch only from a broker whose last fetch brought records: while records flow the broker
holds the fetch until ``FILL_BYTES`` are there or ``FILL_WAIT_MS`` have passed; the first
fetch that comes back empty returns that broker to the consumer's own settings, so an idle
worker fetches as rarely as before and the first record after a pause is answered at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["FILL_BYTES", "FILL_WAIT_MS", "FetchFill", "fill_fetches"]

#: what a fetch from a broker that is sending records waits for, and at most how long: the
#: longest a record arriving into a flowing stream is held at each hop. Of the pairs measured
#: on the two-worker sync benchmark (16 KiB / 20 ms to 256 KiB / 100 ms), the gain stopped
#: growing here (``docs/performance.md``, "Scale-out").
FILL_BYTES = 64 * 1024
FILL_WAIT_MS = 50

ProcFetch = Callable[[Any, int, Any], Awaitable[bool]]


class FetchFill:
    """Stands in for an aiokafka ``Fetcher``'s ``_proc_fetch_request``: it sends the fetch
    request the fetcher built, with the fuller settings when the broker's last fetch brought
    records, and notes whether this one did (what the wrapped method returns)."""

    def __init__(self, proc: ProcFetch, fill_bytes: int, fill_wait_ms: int) -> None:
        self._proc = proc
        self.fill_bytes = fill_bytes
        self.fill_wait_ms = fill_wait_ms
        #: the brokers (node ids) whose last fetch brought records
        self.flowing: set[int] = set()

    async def __call__(self, assignment: Any, node_id: int, request: Any) -> bool:
        if node_id in self.flowing:
            # FetchRequest keeps both as it was built: the fetcher builds one per node per
            # round, so changing this one changes no other broker's fetch.
            request._min_bytes = self.fill_bytes
            request._max_wait_ms = self.fill_wait_ms
        brought_records = await self._proc(assignment, node_id, request)
        if brought_records:
            self.flowing.add(node_id)
        else:
            self.flowing.discard(node_id)
        return brought_records


def fill_fetches(
    fetcher: Any, fill_bytes: int = FILL_BYTES, fill_wait_ms: int = FILL_WAIT_MS
) -> FetchFill:
    """Make a started aiokafka consumer's fetcher (``AIOKafkaConsumer._fetcher``) ask for
    fuller fetches while records flow. Its fetch loop looks the method up for every request,
    so this holds from its next fetch on."""
    fill = FetchFill(fetcher._proc_fetch_request, fill_bytes, fill_wait_ms)
    fetcher._proc_fetch_request = fill
    return fill
