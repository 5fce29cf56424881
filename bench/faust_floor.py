"""What Faust itself costs per record: an agent that reads a topic and acks, doing nothing else.

    .venv/bin/python -m bench.faust_floor [--records 50000]

The floor under normalize's CPU per event (``bench.ingest_pipeline``): the same reading path
a worker has (``noack_take`` batches acked in order through ``app.agents.acks``, the Faust
Prometheus monitor) on a backlog of ``--records`` 600-byte records in 8 partitions, measured
twice in separate processes: with Faust as it comes, and with the worker's settings
(``app.kafka_transport``'s fetch hand-over, ``cython_optimizations``, the cached monitor,
``app.batch_stream``'s batches, ``app.raw_schema``'s events).
Figures: CPU microseconds per record and records/s of the reading process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import faust
from aiokafka import AIOKafkaProducer
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from app.agents.acks import ack_all_when_delivered
from app.batch_stream import BatchStream
from app.faust_metrics import setup_faust_metrics
from app.kafka_local.stack import start_cluster
from app.kafka_transport import use_eager_fetch
from app.raw_schema import raw_schema
from app.settings import load_settings
from app.topic_admin import ensure_topics
from app.topics import TopicSpec
from app.worker_process import free_port
from bench.broker_age import cold_broker_warning
from bench.figures import row

PARTITIONS = 8


async def _fill(bootstrap: str, topic: str, records: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262144)
    await producer.start()
    try:
        value = b"x" * 600
        for n in range(records):
            await producer.send(topic, value, key=f"bench:case:{n % 500}".encode())
        await producer.flush()
    finally:
        await producer.stop()


def _reader(bootstrap: str, topic: str, records: int, tuned: bool) -> None:
    """Child process: read ``records`` records, print the figures as JSON, exit."""
    app = faust.App(
        f"floor-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{bootstrap}",
        autodiscover=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="deskstream-floor-"),
        web_port=free_port(),
        cython_optimizations=tuned,
        Stream=BatchStream if tuned else faust.Stream,
    )
    registry = CollectorRegistry()
    if tuned:
        use_eager_fetch(app)
        setup_faust_metrics(app, registry, "/metrics")
    else:
        setup_prometheus_sensors(app, registry=registry, name_prefix="faust")
    if tuned:
        source = app.topic(topic, partitions=PARTITIONS, schema=raw_schema())
    else:
        source = app.topic(
            topic, partitions=PARTITIONS, key_serializer="raw", value_serializer="raw"
        )
    seen = 0
    started = cpu = 0.0

    @app.agent(source)
    async def read(stream: faust.StreamT[bytes]) -> None:
        nonlocal seen, started, cpu
        async for batch in stream.noack_take(500, within=0.01):  # type: ignore[attr-defined]
            if not seen:
                started, cpu = time.perf_counter(), time.process_time()
            ack_all_when_delivered(app, batch, [])
            seen += len(batch)
            if seen >= records:
                elapsed, used = time.perf_counter() - started, time.process_time() - cpu
                figures = {"per_s": seen / elapsed, "cpu_us": 1e6 * used / seen}
                # Not print(): a Faust worker sends sys.stdout to its log.
                os.write(1, f"FIGURES {json.dumps(figures)}\n".encode())
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "error"]
    app.main()


def _measure(bootstrap: str, topic: str, records: int, tuned: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.faust_floor", "--child", bootstrap, topic]
    command += [str(records), "tuned" if tuned else "plain"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            figures: dict[str, float] = json.loads(line.removeprefix("FIGURES "))
            return figures
    raise RuntimeError(
        f"the reader printed no figures:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, bootstrap, topic, records, mode = sys.argv
        _reader(bootstrap, topic, int(records), mode == "tuned")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50000)
    args = parser.parse_args()
    base = load_settings()
    cluster = start_cluster(base, progress=lambda m: None)
    bootstrap = cluster.bootstrap_servers
    print(f"kafka {bootstrap}, {os.cpu_count()} cores shared with the broker")
    cold = cold_broker_warning(cluster)
    if cold:
        print(cold)
    print(row("faust reading, per record", "CPU us", "rec/s", ""))
    for tuned in (False, True):
        topic = f"floor-{uuid.uuid4().hex[:8]}"
        asyncio.run(ensure_topics(bootstrap, [TopicSpec("floor", topic, PARTITIONS, 1)]))
        asyncio.run(_fill(bootstrap, topic, args.records))
        found = _measure(bootstrap, topic, args.records, tuned)
        name = "worker's settings" if tuned else "Faust as it comes"
        print(row(name, f"{found['cpu_us']:.0f}", f"{found['per_s']:.0f}", ""))


if __name__ == "__main__":
    main()
