"""What the worker's consumer adds per record to note where changelog records stop.

    .venv/bin/python -m bench.changelog_note [--calls 200000] [--rounds 3]

``app.kafka_transport.Consumer._to_message`` notes, for every record Faust's ``getmany`` hands
on, the last offset of each changelog partition (so that a changelog batch Faust set aside is
read again). This times it against Faust's own ``_to_message`` on a stream record (the hot
path: what every record of normalize and sync pays) and on a changelog record, on a worker-
shaped app (built, not started: no broker). Figures: microseconds per call, and the note's
share of ``bench.faust_floor``'s per-record floor (66 to 76 µs on the 2-core machine).
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any, cast

import faust
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as driver

from app.kafka_transport import use_eager_fetch
from bench.figures import row

#: ``bench.faust_floor``'s per-record floor, µs (docs/performance.md): the scale of the cost
FLOOR_US = 66.0


def _per_call_us(call: Any, calls: int) -> float:
    return timeit.timeit(call, number=calls) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    app = faust.App("changelog-note", broker="kafka://127.0.0.1:1", autodiscover=False)
    use_eager_fetch(app)
    app.Table("links", default=int)
    consumer = cast(Any, app.consumer)
    consumer.changelog_topics = frozenset(app.tables.changelog_topics)
    faust_to_message = driver.Consumer._to_message
    print(row("per call, µs", "ours", "Faust's", "+% floor"))
    for topic in ("deskstream.raw", "changelog-note-links-changelog"):
        tp = TopicPartition(topic, 1)
        record = ConsumerRecord(topic, 1, 5, 0, 0, b"k", b"v", None, 1, 1, ())
        for _ in range(args.rounds):
            ours = _per_call_us(lambda tp=tp, r=record: consumer._to_message(tp, r), args.calls)
            theirs = _per_call_us(
                lambda tp=tp, r=record: faust_to_message(consumer, tp, r), args.calls
            )
            kind = "changelog" if topic.endswith("-changelog") else "stream"
            added = f"{100 * (ours - theirs) / FLOOR_US:.2f}"
            print(row(f"{kind} record", f"{ours:.3f}", f"{theirs:.3f}", added))


if __name__ == "__main__":
    main()
