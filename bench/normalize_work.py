"""normalize's own work per record, without Kafka: the part no reading path can take away.

    .venv/bin/python -m bench.normalize_work [--records 20000]

Times, in this process and in CPU time, what the normalize agent does for each raw record
apart from reading and writing Kafka (``app.agents.normalize.RecordNormaliser.encoded``:
decode the ``RawDelivery``, normalise it, encode and size its events) on the raw records
``bench.ingest_pipeline`` writes, and what each of those three stages adds. Not counted, so the
figure is a floor of the agent's work: the dedupe, the batching into Kafka batches, the acks.

``bench.ingest_pipeline`` runs it after its bare aiokafka loop and prints the bare loop's CPU
per record over this: the ratio normalize / bare loop would reach if reading and writing
Kafka through Faust cost no more than the bare loop's own reading and writing (issue 11's
target is 0.25).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.agents.normalize import RecordNormaliser
from app.settings import load_settings
from bench.figures import row
from bench.generic_records import CONNECTOR, raw_record
from schemas.codec import decode_as
from schemas.models import RawDelivery

__all__ = ["WorkFigures", "normalize_work", "work_rows"]

#: rounds over the records; the fastest round counts (the others met a busy moment)
ROUNDS = 3


@dataclass(frozen=True, slots=True)
class WorkFigures:
    """CPU microseconds per raw record (each gives one event here)."""

    total_us: float
    decode_us: float
    normalise_us: float
    encode_us: float


def _cpu_us_per_item(work: Callable[[Any], object], items: Sequence[Any]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - started)
    return 1e6 * best / len(items)


def normalize_work(records: int) -> WorkFigures:
    settings = load_settings(connectors={CONNECTOR: {"platform": "generic"}})
    now = datetime.now(UTC)
    values = [raw_record(n, now)[1] for n in range(records)]
    agent = RecordNormaliser(settings)
    where = "on the benchmark's raw topic"
    outcome, _ = agent.outcome_of(values[0], now)
    if outcome.quarantined is not None:  # the figures would time a refusal
        raise RuntimeError(f"the benchmark's records are quarantined: {outcome.quarantined}")
    # Each stage is timed as the pipeline runs it, up to that stage, and the one before taken
    # away: a stage alone on objects the previous round made measured less (an event encoded
    # again costs about a third less than one just built).
    decoded = _cpu_us_per_item(lambda value: decode_as(value, RawDelivery), values)
    normalised = _cpu_us_per_item(lambda value: agent.outcome_of(value, now), values)
    total = _cpu_us_per_item(lambda value: agent.encoded(value, where), values)
    return WorkFigures(
        total_us=total,
        decode_us=decoded,
        normalise_us=normalised - decoded,
        encode_us=total - normalised,
    )


def work_rows(work: WorkFigures) -> list[tuple[str, str]]:
    """(measure, figure) rows of the work and its stages."""
    return [
        ("normalize work alone, CPU us/event", f"{work.total_us:.1f}"),
        ("  decode the raw record, us", f"{work.decode_us:.1f}"),
        ("  normalise (JSON, models), us", f"{work.normalise_us:.1f}"),
        ("  encode and size the event, us", f"{work.encode_us:.1f}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    args = parser.parse_args()
    work = normalize_work(args.records)
    print(f"{args.records} raw records, this process, the fastest of {ROUNDS} rounds")
    print(row("measure", "figure", "target", "ratio"))
    for measure, figure in work_rows(work):
        print(row(measure, figure, "", None))


if __name__ == "__main__":
    main()
