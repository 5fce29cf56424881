"""The canonical topics, read by other people's code through a real schema registry.

A real worker process writes with a real registry (the harness's Apicurio Registry, or
``SCHEMA_REGISTRY_URL``); confluent-kafka's ``DeserializingConsumer`` with its
``AvroDeserializer`` and ``SchemaRegistryClient`` reads ``deskstream.events``, not our
decoder. A record written before the upgrade (single-object encoding) is still read by the
upgraded worker. A schema that breaks what the registry holds stops the worker at start.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from schemas.codec import AvroCodec
from schemas.models import Platform, RawDelivery
from schemas.registry import get_registry
from tests.factories import body_of, case_event, signed_headers

pytestmark = pytest.mark.kafka

SECRET = "registry-e2e-secret"
LEGACY_CASE = "legacy-1"


@dataclass(frozen=True)
class Worker:
    url: str
    settings: Settings
    bootstrap: str
    registry: str


def _env(bootstrap: str, registry: str, run: str, folder: Path) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_SCHEMA_REGISTRY_URL": registry,
        "DESKSTREAM_APP_ID": f"deskstream-registry-{run}",
        "DESKSTREAM_TOPIC_PREFIX": f"registry-{run}",
        "DESKSTREAM_PARTITIONS": "2",
        "DESKSTREAM_REPLICATION_FACTOR": "1",
        "DESKSTREAM_STATE_DIR": str(folder),
        "DESKSTREAM_CONNECTORS__crm__PLATFORM": "generic",
        "DESKSTREAM_CONNECTORS__crm__SECRET_FILE": str(folder / "secret"),
    }


def _settings(env: dict[str, str]) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=env["DESKSTREAM_TOPIC_PREFIX"],
        app_id=env["DESKSTREAM_APP_ID"],
        partitions=2,
        replication_factor=1,
    )


async def _write_legacy_raw(bootstrap: str, topic: str) -> None:
    """A delivery as a worker before the registry stored it: the single-object encoding."""
    delivery = RawDelivery(
        delivery_id="legacy-delivery-1",
        connector_id="crm",
        platform=Platform.GENERIC,
        received_at=datetime.now(UTC),
        body=body_of(case_event(LEGACY_CASE)),
        content_type="application/json",
        signature_verified=True,
    )
    value = AvroCodec(get_registry()).encode(delivery)  # no ids: the old framing
    assert value[:2] == b"\xc3\x01"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=f"crm:case:{LEGACY_CASE}".encode())
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap_servers: str, schema_registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    run = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp(f"registry-{run}")
    (folder / "secret").write_text(SECRET)
    env = _env(kafka_bootstrap_servers, schema_registry_url, run, folder)
    settings = _settings(env)
    asyncio.run(ensure_topics(kafka_bootstrap_servers, topic_specs(settings)))
    asyncio.run(_write_legacy_raw(kafka_bootstrap_servers, settings.topic("raw")))
    with run_worker(env, port=free_port(), log=folder / "worker.log") as running:
        yield Worker(running.url, settings, kafka_bootstrap_servers, schema_registry_url)


def _registry_client(worker: Worker) -> SchemaRegistryClient:
    """confluent-kafka's registry client with a read timeout: without one, a registry that
    stalls on a loaded machine holds the test until pytest's own timeout ends it (seen once in
    CI); with it, the client's own retries (3, with backoff) ride out a slow answer."""
    return SchemaRegistryClient({"url": worker.registry, "timeout": 15})


def _read_with_confluent(worker: Worker, expected: int, *, settle: float = 2.0) -> list[Any]:
    """``deskstream.events`` through confluent-kafka's own deserializer and registry client:
    waits for ``expected`` records, then ``settle`` s more so an extra one would be seen."""
    registry = _registry_client(worker)
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": worker.bootstrap,
            "group.id": f"confluent-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "value.deserializer": AvroDeserializer(registry),
        }
    )
    consumer.subscribe([worker.settings.topic("events")])
    records: list[Any] = []
    try:
        deadline = time.monotonic() + 90
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                records.append(message)
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    return records


def _post(worker: Worker, entity_id: str) -> int:
    body = body_of(case_event(entity_id))
    headers = signed_headers(SECRET, body, at=datetime.now(UTC))
    return httpx.post(
        f"{worker.url}/webhooks/crm", content=body, headers=headers, timeout=10
    ).status_code


def test_confluent_kafka_reads_the_events_our_worker_wrote(worker: Worker) -> None:
    cases = [f"case-{n}" for n in range(5)]
    assert [_post(worker, case) for case in cases] == [200] * 5

    records = _read_with_confluent(worker, expected=6)

    values = [record.value() for record in records]
    assert sorted(v["source"]["entity_id"] for v in values) == sorted([*cases, LEGACY_CASE])
    assert {v["source"]["platform"] for v in values} == {"generic"}
    assert all(v["op"] == "update" and v["data"]["status"] == "open" for v in values)
    assert len({v["event_id"] for v in values}) == 6
    # Every one of them in the Confluent framing, with the id the subject holds for Envelope.
    subject = f"{worker.settings.topic('events')}-value"
    latest = _registry_client(worker).get_latest_version(subject)
    assert latest.schema.schema_str is not None
    written = json.loads(latest.schema.schema_str)
    assert _full_name(written) == "deskstream.Envelope"
    assert {record.value() is not None for record in records} == {True}
    assert {_schema_id(worker, record) for record in records} == {latest.schema_id}


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    return name if "." in name else f"{schema.get('namespace', '')}.{name}"


def _schema_id(worker: Worker, record: Any) -> int:
    # DeserializingConsumer hands over the decoded value only; the raw bytes are read again
    # with a plain consumer at the same offset.
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": worker.bootstrap, "group.id": f"raw-{uuid.uuid4().hex[:8]}"}
    )
    try:
        consumer.assign([TopicPartition(record.topic(), record.partition(), record.offset())])
        message = consumer.poll(10)
        assert message is not None
        assert message.error() is None
        value = message.value()
        assert value is not None
        assert value[0] == 0, f"not the Confluent framing: {value[:5].hex()}"
        return int.from_bytes(value[1:5], "big")
    finally:
        consumer.close()


INCOMPATIBLE_ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": "deskstream",
    "fields": [{"name": "event_id", "type": "long"}],
}


def test_worker_refuses_to_start_when_its_schema_breaks_the_subject(
    kafka_bootstrap_servers: str, schema_registry_url: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    (tmp_path / "secret").write_text(SECRET)
    env = _env(kafka_bootstrap_servers, schema_registry_url, run, tmp_path)
    subject = f"registry-{run}.events-value"
    # Another producer got there first with an Envelope whose event_id is a long.
    registered = httpx.post(
        f"{schema_registry_url}/subjects/{subject}/versions",
        json={"schema": json.dumps(INCOMPATIBLE_ENVELOPE)},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=10,
    )
    assert registered.status_code == 200, registered.text

    started = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--web-port", str(free_port())],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert started.returncode == 1, started.stderr[-2000:]
    error = started.stderr.strip().splitlines()[-1]
    assert error.startswith("error: deskstream.Envelope as this release writes it is incompatible")
    assert f"subject {subject}" in error
    assert "refuses to start" in error
    # Nothing of this release was registered, under that subject or any other: every subject
    # is checked before any is written.
    versions = httpx.get(f"{schema_registry_url}/subjects/{subject}/versions", timeout=10)
    assert versions.json() == [1]
    subjects = httpx.get(f"{schema_registry_url}/subjects", timeout=10).json()
    assert [s for s in subjects if s.startswith(f"registry-{run}.")] == [subject]
