"""Encode and decode cost of the Confluent framing (schema ids) against the single-object
encoding it replaces, on the same messages: ``python -m bench.schema_framing``.

No registry is involved: the ids are installed by hand, as a worker has them after start-up,
so this measures the hot path only (which never calls the registry). CPU time, best of 7
rounds of ``--count`` messages per example; the ratio is framed / single-object (1.00: the
same cost, above 1: the framing costs more).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from schemas.codec import AvroCodec
from schemas.models import TOP_LEVEL_MODELS, AvroRecord
from schemas.registry import get_registry
from schemas.schema_ids import SchemaIds
from tests.schemas.examples import EXAMPLES

ROUNDS = 7


def _best_us(work: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(count):
            work()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


def _codecs() -> tuple[AvroCodec, AvroCodec]:
    registry = get_registry()
    ids = SchemaIds(registry)
    for n, model in enumerate(TOP_LEVEL_MODELS):
        ids.set_writer(model.avro_name, 100 + n)
    return AvroCodec(registry), AvroCodec(registry, ids)


def measure(label: str, example: AvroRecord, count: int) -> tuple[float, float, float, float]:
    single, framed = _codecs()
    single_bytes, framed_bytes = single.encode(example), framed.encode(example)
    return (
        _best_us(lambda: single.encode(example), count),
        _best_us(lambda: framed.encode(example), count),
        _best_us(lambda: single.decode(single_bytes), count),
        _best_us(lambda: framed.decode(framed_bytes), count),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="messages per round")
    args = parser.parse_args()
    labels = [label for label in sorted(EXAMPLES) if label.startswith("Envelope")]
    labels += ["SyncCommand", "AuditRecord"]
    print(
        f"{'message':24} {'encode single/framed us':>24} {'ratio':>6} "
        f"{'decode single/framed us':>24} {'ratio':>6}"
    )
    totals = [0.0, 0.0, 0.0, 0.0]
    for label in labels:
        enc_single, enc_framed, dec_single, dec_framed = measure(label, EXAMPLES[label], args.count)
        for i, value in enumerate((enc_single, enc_framed, dec_single, dec_framed)):
            totals[i] += value
        print(
            f"{label:24} {enc_single:>11.1f} / {enc_framed:<10.1f} {enc_framed / enc_single:>6.2f} "
            f"{dec_single:>11.1f} / {dec_framed:<10.1f} {dec_framed / dec_single:>6.2f}"
        )
    print(
        f"{'all (sum)':24} {totals[0]:>11.1f} / {totals[1]:<10.1f} {totals[1] / totals[0]:>6.2f} "
        f"{totals[2]:>11.1f} / {totals[3]:<10.1f} {totals[3] / totals[2]:>6.2f}"
    )


if __name__ == "__main__":
    main()
