"""The demo's downstream users, with their own tools: a team reading ``deskstream.events`` with
confluent-kafka's ``AvroDeserializer`` through the schema registry (not our decoder), and an
analyst replaying the demo's events to Parquet (``deskstream replay --out``) and querying the
files with DuckDB.

confluent-kafka is in the ``sandbox`` extra, pyarrow and DuckDB in ``analytics``; ``make
install`` installs both (``.[dev]``). Each step says what to install when its package is
missing and lets the rest of the demo run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import shutil
import textwrap
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from app.replay.run import run_replay
from app.schema_registry import registry_password, registry_url
from app.settings import Settings
from schemas.codec import CONFLUENT_MAGIC, writer_schema_id
from streams.replay import ReplayFilter, ReplayJob

__all__ = ["query_with_duckdb", "read_with_confluent", "replay_to_parquet"]

#: records printed in full by the confluent-kafka reader; the rest are only counted
SHOWN = 3
#: how long the reader waits for the events the demo knows are there
READ_SECONDS = 30.0
#: how long one schema registry request, and the reader's close, may take
REGISTRY_TIMEOUT_S = 10.0
CLOSE_SECONDS = 10.0

QUERY = """\
SELECT entity_type, count(*) AS events, count(DISTINCT event_id) AS event_ids,
       list(DISTINCT actor.kind ORDER BY actor.kind) AS actors,
       arg_max(data_case.status, occurred_at) AS case_status,
       any_value(schema_id) AS schema_id
FROM read_parquet('{glob}', hive_partitioning = true)
GROUP BY entity_type
ORDER BY entity_type"""


def _missing(*modules: str) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def read_with_confluent(
    settings: Settings, servers: str, start: Mapping[int, int], expected: int
) -> int:
    """Read ``expected`` events of ``deskstream.events`` from the ``start`` offsets (partition
    → offset) with confluent-kafka's consumer and ``AvroDeserializer``; print a few. Returns
    how many it decoded (0 when it cannot run here)."""
    url = registry_url(settings)
    if url is None:
        click.echo(
            "  skipped: no schema registry (DESKSTREAM_SCHEMA_REGISTRY_URL), so the events are "
            "in the Avro single-object encoding, which confluent-kafka does not read"
        )
        return 0
    if _missing("confluent_kafka"):
        click.echo(
            "  skipped: confluent-kafka is not installed; pip install -e '.[sandbox]' "
            "(make install does)"
        )
        return 0
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    # confluent-kafka's registry client waits for ever by default (httpx with no timeout).
    registry_conf: dict[str, Any] = {"url": url, "timeout": REGISTRY_TIMEOUT_S}
    if settings.schema_registry_user:
        password = registry_password(settings) or ""
        registry_conf["basic.auth.user.info"] = f"{settings.schema_registry_user}:{password}"
    deserialize = AvroDeserializer(SchemaRegistryClient(registry_conf))
    topic = settings.topic("events")
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            # librdkafka wants a group id; partitions are assigned by hand and nothing is
            # committed, so the group never holds offsets.
            "group.id": f"deskstream-demo-reader-{int(time.time())}",
            "enable.auto.commit": False,
        }
    )
    decoded = 0
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        deadline = time.monotonic() + READ_SECONDS
        while decoded < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                click.secho(f"  consumer error: {error}", fg="red")
                continue
            raw = message.value() or b""
            try:
                value = deserialize(raw, SerializationContext(topic, MessageField.VALUE))
            except Exception as exc:  # the registry's or the deserializer's: say it, go on
                click.secho(
                    f"  could not decode partition {message.partition()} offset "
                    f"{message.offset()}: {type(exc).__name__}: {exc}; check that the schema "
                    f"registry at {url} is up and reachable, then run the demo again",
                    fg="red",
                )
                break
            decoded += 1
            if decoded <= SHOWN:
                click.echo(_describe(message.partition(), message.offset(), raw, value))
    finally:
        _close_within(consumer, CLOSE_SECONDS)
    click.echo(
        f"  {decoded} events decoded by confluent-kafka's AvroDeserializer, writer schemas "
        f"fetched by id from {url}" + (f" ({SHOWN} shown)" if decoded > SHOWN else "")
    )
    if decoded < expected:
        click.secho(f"  only {decoded} of {expected} events arrived in {READ_SECONDS:.0f} s")
    return decoded


def _close_within(consumer: Any, seconds: float) -> None:
    """``consumer.close()``, waited for at most ``seconds``: librdkafka's close can wait for
    ever on a group coordinator that does not answer (librdkafka issue 3740), and the reader
    commits nothing, so nothing is lost by not waiting."""
    closing = threading.Thread(target=consumer.close, name="confluent-close", daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        click.secho(
            f"  the confluent-kafka consumer did not close within {seconds:g} s; carrying on "
            "without it (it holds no offsets)",
            fg="yellow",
        )


def _describe(partition: int | None, offset: int | None, raw: bytes, value: Any) -> str:
    """A record as confluent-kafka handed it over: its framing, and the dict it decoded."""
    framing = "Confluent framing" if raw[:1] == CONFLUENT_MAGIC else f"framing {raw[:2].hex()}"
    source = value["source"]
    data = {k: v for k, v in (value.get("data") or {}).items() if v not in (None, [], {})}
    picked = " ".join(f"{k}={data[k]!r}" for k in list(data)[:3])
    return (
        f"  partition {partition} offset {offset}: {framing}, schema id {writer_schema_id(raw)}\n"
        f"    event_id={value['event_id']!r} op={value['op']!r} "
        f"source.entity={source['entity_type']}:{source['entity_id']}\n"
        f"    data: {picked[:100]}"
    )


def replay_to_parquet(settings: Settings, since: datetime, folder: Path) -> int | None:
    """Replay the events stamped since ``since`` into Parquet files under ``folder`` (emptied
    first), as ``deskstream replay --from ... --out ...`` does. Returns the rows written (None
    when it cannot run here)."""
    missing = _missing("pyarrow", "duckdb")
    if missing:
        click.echo(
            f"  skipped: {' and '.join(missing)} not installed; pip install -e '.[analytics]' "
            "(make install does)"
        )
        return None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from app.replay.parquet import CHECKPOINT_NAME

    job = ReplayJob(
        topic=settings.topic("events"),
        start_ms=int(since.timestamp() * 1000),
        end_ms=None,
        filter=ReplayFilter.of(),
        output="parquet",
        target=str(folder.resolve()),
    )
    click.echo(f"  $ deskstream replay --from {since:%Y-%m-%dT%H:%M:%S}Z --out {folder}")
    progress = io.StringIO()  # its last line only: a few events replay in well under a second
    result = asyncio.run(
        run_replay(
            settings, job, checkpoint_path=folder / CHECKPOINT_NAME, progress_stream=progress
        )
    )
    for line in progress.getvalue().splitlines()[-1:]:
        click.echo(f"  {line}")
    files = sorted(p.relative_to(folder) for p in folder.rglob("*.parquet"))
    example = f", e.g. {files[0]}" if files else ""
    click.echo(f"  {result.checkpoint.written} rows in {len(files)} files{example}")
    return result.checkpoint.written


def query_with_duckdb(folder: Path) -> list[tuple[Any, ...]]:
    """Run the analysts' first query over the files; print it and its result."""
    import duckdb

    query = QUERY.format(glob=f"{folder}/**/*.parquet")
    click.echo(textwrap.indent(query, "  D "))
    relation = duckdb.sql(query)
    assert relation is not None  # None only for statements without a result
    rows = relation.fetchall()
    click.echo(textwrap.indent(str(relation), "  "))
    return rows


def since_now() -> datetime:
    """The replay's ``--from`` for events about to be posted: now, in whole seconds (the
    events' Kafka timestamps are the worker's send times, on this machine's clock)."""
    return datetime.fromtimestamp(int(time.time()), UTC)
