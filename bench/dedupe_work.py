"""normalize's dedupe per record, without Kafka: what it adds to the agent's own work.

    .venv/bin/python -m bench.dedupe_work [--records 60000]

Times, in this process and in CPU time, what ``app.agents.dedupe.EventDedupe`` does for each
raw record in the normalize agent: ``fresh`` as the record is read, then ``remember_batch``
once per batch of ``app.agents.normalize.BATCH_MAX`` records, on the raw records
``bench.ingest_pipeline`` writes (500 entities, each record one event) and on a real Faust
table (its memory store, as the worker's without ``rocksdb://``). The changelog writer and
the sends are stand-ins already acknowledged: Kafka's part is in ``bench.ingest_pipeline``,
which measures the dedupe on and off in the worker (``docs/performance.md``).

Figures: ``streams.recent_ids.remember`` alone on one key holding 60, 120 and 250 ids and at
the bound (each call then evicts one); the dedupe from empty tables (each key holds up to
``--records`` / 500 ids by the end, as in ``bench.ingest_pipeline``'s runs), and with every
key already holding the most ids the count bound allows (``DESKSTREAM_EVENT_DEDUPE_MAX_IDS``),
so each record evicts one: a busy entity's case.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import timeit
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from app.agents.dedupe import EventDedupe, SentIds
from app.agents.normalize import BATCH_MAX, RecordNormaliser
from app.metrics import Metrics
from app.settings import load_settings
from app.tables import declare_recent_events_table
from bench.figures import row
from bench.generic_records import CONNECTOR, raw_record
from schemas.models import Envelope
from streams.recent_ids import digest, remember

__all__ = ["dedupe_work"]

#: rounds of each figure (over the records, each on a table of its own); the fastest counts
ROUNDS = 3


class _Acknowledged:
    """The changelog writer, its records acknowledged at once."""

    async def write(self, records: Sequence[tuple[int, bytes, bytes]]) -> list[Awaitable[Any]]:
        return []


def _records(count: int) -> list[tuple[bytes, list[tuple[Envelope, bytes]]]]:
    """(raw key, the record's events) of the benchmark's raw records."""
    settings = load_settings(connectors={CONNECTOR: {"platform": "generic"}})
    normaliser = RecordNormaliser(settings)
    now = datetime.now(UTC)
    records = []
    for n in range(count):
        key, value = raw_record(n, now)
        outcome, _ = normaliser.encoded(value, "on the benchmark's raw topic")
        records.append((key, outcome.events))
    return records


async def _round(
    dedupe: EventDedupe, records: list[tuple[bytes, list[tuple[Envelope, bytes]]]], now: int
) -> float:
    started = time.process_time()
    for first in range(0, len(records), BATCH_MAX):
        sent: list[SentIds] = []
        for key, events in records[first : first + BATCH_MAX]:
            _, digests = dedupe.fresh(key, events, now=now, platform="generic")
            if digests:
                sent.append(SentIds(key, 0, digests, now, "generic"))
        await asyncio.gather(*dedupe.remember_batch(sent, []))
    return time.process_time() - started


def _fill(
    table: faust.types.TableT[bytes, bytes], keys: set[bytes], now: int, max_ids: int
) -> None:
    """Every key holding ``max_ids`` ids seen a second before ``now``."""
    for key in keys:
        ids = [digest(f"{key!r}-earlier-{n}") for n in range(max_ids)]
        remembered = remember(None, ids, now=now - 1, window=now, max_ids=max_ids)
        table.data[key] = remembered.state


#: ids one key holds for the ``remember`` figures below the bound (a full key is timed too)
HELD = (60, 120, 250)


def remember_alone(held: int, max_ids: int, calls: int = 100_000) -> float:
    """CPU microseconds of one ``remember`` call adding one id to a key holding ``held``."""
    now = int(time.time())
    ids = [digest(f"held-{n}") for n in range(held)]
    state = remember(None, ids, now=now, window=3600, max_ids=max_ids).state
    new = [digest("new")]
    timer = timeit.Timer(
        lambda: remember(state, new, now=now, window=3600, max_ids=max_ids),
        timer=time.process_time,
    )
    return 1e6 * min(timer.repeat(ROUNDS, calls)) / calls


async def _dedupe_work(made: list[tuple[bytes, list[tuple[Envelope, bytes]]]], full: bool) -> float:
    settings = load_settings(connectors={CONNECTOR: {"platform": "generic"}})
    now = int(time.time())
    best = float("inf")
    for _ in range(ROUNDS):
        app = faust.App("bench-dedupe", broker="kafka://localhost:1", store="memory://")
        table = declare_recent_events_table(app, settings)
        if full:
            _fill(table, {key for key, _ in made}, now, settings.event_dedupe_max_ids)
        dedupe = EventDedupe(
            table,
            Metrics(CollectorRegistry()),
            changelog=_Acknowledged(),
            window_seconds=settings.event_dedupe_window_seconds,
            max_ids=settings.event_dedupe_max_ids,
        )
        best = min(best, await _round(dedupe, made, now))
    return 1e6 * best / len(made)


def dedupe_work(records: int) -> tuple[float, float]:
    """CPU microseconds per raw record (one event each) of the dedupe: from empty tables,
    and with every key at the count bound."""
    made = _records(records)
    return asyncio.run(_dedupe_work(made, full=False)), asyncio.run(_dedupe_work(made, full=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60000)
    args = parser.parse_args()
    max_ids = load_settings().event_dedupe_max_ids
    empty, full = dedupe_work(args.records)
    print(f"{args.records} raw records, this process, the fastest of {ROUNDS} rounds")
    print(row("measure", "figure", "target", "ratio"))
    for held in HELD:
        figure = remember_alone(held, max_ids)
        print(row(f"remember, key holding {held} ids, us", f"{figure:.2f}", "", None))
    figure = remember_alone(max_ids, max_ids)
    print(row(f"remember, full key ({max_ids} ids), us", f"{figure:.2f}", "", None))
    print(row("dedupe, CPU us/record", f"{empty:.1f}", "", None))
    print(row("  every key at the count bound, us", f"{full:.1f}", "", None))


if __name__ == "__main__":
    main()
