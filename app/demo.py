"""``deskstream demo``: local Kafka, topics, a worker, signed webhooks in, canonical events out;
then the Intercom ⇄ Zendesk sync rehearsed live against the sandboxes (``app.demo_sync``), and
an AI chat handed to a human in Zendesk's agent workspace (``app.demo_chat``).

Everything it starts is real: the Kafka broker from the Apache jars, the schema registry
(Apicurio, from Maven Central), the Faust worker as its own process, HTTP webhooks signed like
any sender signs them, and a plain Kafka consumer that decodes what the worker wrote (Confluent
framing, schema ids from the registry) with the shipped Avro schemas. Then the events as their
users read them (``app.demo_consumers``): confluent-kafka's ``AvroDeserializer`` through the
registry, and a replay to Parquet queried with DuckDB. The demo connector's secret is
generated per run and handed to the worker through its environment only.
"""

from __future__ import annotations

import asyncio
import faulthandler
import secrets
import signal
import time
from typing import Any

import click
import httpx

from app.demo_chat import run_chat_act
from app.demo_consumers import query_with_duckdb, read_with_confluent, replay_to_parquet, since_now
from app.demo_sync import run_sync_act
from app.kafka_connection import bootstrap_servers
from app.kafka_local.registry import start_registry
from app.kafka_local.stack import start_cluster
from app.schema_registry import install_schema_registry
from app.settings import Settings, get_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import run_worker
from connectors.generic.ingest import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from streams.normalize import event_key

__all__ = ["demo"]

CONNECTOR = "demo"


@click.command()
@click.option("--web-port", type=int, default=None, help="Worker web port (default: settings).")
@click.option("--follow", is_flag=True, help="Keep the worker running and show new events.")
@click.option("--sync/--no-sync", default=True, help="Also rehearse the Intercom ⇄ Zendesk sync.")
@click.option("--chat/--no-chat", default=True, help="Also rehearse the AI chat's live hand-off.")
def demo(web_port: int | None, follow: bool, sync: bool, chat: bool) -> None:
    """Bring up Kafka and a worker, post sample webhooks, show the canonical events."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # `kill -USR1 <pid>` prints where every thread of the demo is, on stderr: a demo that
    # seems stuck says in which step and which call.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    _step("Kafka")
    cluster = start_cluster(settings, progress=lambda m: click.echo(f"  {m}"))
    click.echo(f"  bootstrap servers: {cluster.bootstrap_servers}")
    if cluster.local:
        _step("Schema registry")
        registry = start_registry(
            settings, cluster.bootstrap_servers, progress=lambda m: click.echo(f"  {m}")
        )
        click.echo(f"  Confluent-compatible API: {registry.url}")
    install_schema_registry(settings, register=False)  # the events name their schema ids
    _step("Topics")
    servers = bootstrap_servers(settings)
    report = asyncio.run(ensure_topics(servers, topic_specs(settings)))
    click.echo(f"  {len(report.created)} created, {len(report.existing)} already there")
    secret = secrets.token_urlsafe(32)
    base_url = f"http://{settings.web_host}:{settings.web_port}"
    _step(f"Worker on {base_url}")
    env = {
        f"DESKSTREAM_CONNECTORS__{CONNECTOR}__PLATFORM": "generic",
        f"DESKSTREAM_CONNECTORS__{CONNECTOR}__SECRET": secret,
    }
    log_path = (settings.state_dir / "logs" / "demo-worker.log").absolute()
    with run_worker(env, port=settings.web_port, log=log_path):
        click.echo("  ready: topics exist, partitions assigned, tables recovered")
        start = asyncio.run(_end_offsets(servers, settings))
        since = since_now()
        _step("Webhooks")
        events = _post_story(base_url, secret)
        _step("Canonical events on Kafka (schema ids from the registry)")
        click.echo("  (ordered per entity, which is per partition; entities interleave)")
        asyncio.run(_show(servers, settings, start, events + 1, follow=False))  # + quarantined
        _step("The same events read by confluent-kafka (AvroDeserializer, the registry)")
        events_topic = settings.topic("events")
        offsets = {tp.partition: n for tp, n in start.items() if tp.topic == events_topic}
        read_with_confluent(settings, servers, offsets, events)
        _step("Replayed to Parquet, queried with DuckDB")
        folder = (settings.state_dir / "demo-replay").absolute()
        if replay_to_parquet(settings, since, folder) is not None:
            query_with_duckdb(folder)
        if follow:
            _step("New events as they arrive (Ctrl-C to stop)")
            now = asyncio.run(_end_offsets(servers, settings))
            asyncio.run(_show(servers, settings, now, 0, follow=True))
        click.echo(f"\nMetrics: {base_url}/metrics   Worker log: {log_path}")
    if sync:
        _step("Intercom ⇄ Zendesk, live (sandboxes, a syncing worker, people acting)")
        folder = (settings.state_dir / "demo-sync").absolute()
        folder.mkdir(parents=True, exist_ok=True)
        asyncio.run(run_sync_act(servers, folder))
    if chat:
        _step("AI chat → a human in Zendesk's agent workspace, live (Conversations sandbox)")
        folder = (settings.state_dir / "demo-chat").absolute()
        folder.mkdir(parents=True, exist_ok=True)
        asyncio.run(run_chat_act(servers, folder))
    click.echo("\nKafka keeps running; stop it with `deskstream kafka down`.")


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    # Python's default for SIGTERM ends the process without unwinding it, which would leave
    # the demo's worker processes running; SystemExit unwinds every act, and each stops the
    # workers it started (Ctrl-C does the same through KeyboardInterrupt).
    raise SystemExit(128 + signum)


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def _post(client: httpx.Client, secret: str, body: bytes, n: int, *, forged: bool = False) -> int:
    timestamp = int(time.time())
    signature = sign("not-the-secret" if forged else secret, timestamp, body)
    response = client.post(
        f"/webhooks/{CONNECTOR}",
        content=body,
        headers={
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature,
            DELIVERY_HEADER: f"demo-delivery-{n}",
            "content-type": "application/json",
        },
    )
    return response.status_code


def _post_story(base_url: str, secret: str) -> int:
    """Post the story (and the bad deliveries); returns how many events it makes."""
    import json

    from app.demo_data import story

    events = story(run=secrets.token_hex(4))
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for n, event in enumerate(events, start=1):
            body = json.dumps(event).encode()
            status = _post(client, secret, body, n)
            click.echo(f"  {status}  {event['source']['entity_type']:8} {event['op']}")
        status = _post(client, secret, json.dumps(events[0]).encode(), 1)
        click.echo(f"  {status}  redelivery of the first webhook → dropped, one record per event")
        status = _post(client, secret, b'{"source": "half a payload', 99)
        click.echo(f"  {status}  authenticated but malformed → quarantined with a reason")
        status = _post(client, secret, json.dumps(events[1]).encode(), 100, forged=True)
        click.echo(f"  {status}  forged signature → refused, nothing stored")
    return len(events)  # the redelivery never reaches deskstream.events


async def _end_offsets(servers: str, settings: Settings) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [
            TopicPartition(settings.topic(name), p)
            for name in ("events", "quarantine")
            for p in range(settings.partitions)
        ]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _show(
    servers: str, settings: Settings, start: dict[Any, int], expected: int, *, follow: bool
) -> None:
    from aiokafka import AIOKafkaConsumer

    from schemas.codec import decode
    from schemas.models import Envelope, QuarantineRecord

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        seen = 0
        deadline = time.monotonic() + 30.0
        while follow or (seen < expected and time.monotonic() < deadline):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    seen += 1
                    value = decode(record.value)
                    if isinstance(value, Envelope):
                        click.echo(_describe(value, len(record.value)))
                    elif isinstance(value, QuarantineRecord):
                        click.secho(f"  quarantined  {value.reason}", fg="yellow")
        if seen < expected:
            click.secho(f"  only {seen} of {expected} records arrived in 30 s", fg="red")
    finally:
        await consumer.stop()


def _describe(event: Any, size: int) -> str:
    data = event.data
    summary = ""
    if data is not None:
        fields = data.model_dump(exclude_defaults=True, mode="json")
        picked = {k: fields[k] for k in list(fields)[:4]}
        summary = " ".join(f"{k}={v!r}" for k, v in picked.items())[:110]
    actor = event.source.actor
    who = f"{actor.kind}:{actor.name or actor.id}"
    return (
        f"  {event.source.occurred_at:%H:%M:%S}  {event_key(event):34} {event.op:6} "
        f"by {who:16} event {event.event_id[:8]}  {size} B Avro\n      {summary}"
    )
