"""``deskstream topics create`` against a real broker: idempotent, and honest about drift."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics, existing_topics
from app.topics import topic_specs

pytestmark = pytest.mark.kafka


def _settings(bootstrap: str) -> Settings:
    return load_settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=f"admin-{uuid.uuid4().hex[:8]}",
        app_id=f"admin-{uuid.uuid4().hex[:8]}",  # table changelogs are named by app id
        partitions=3,
        replication_factor=1,
    )


async def _delete(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def _until_config(admin: AIOKafkaAdminClient, topic: str, key: str, value: str) -> None:
    """KRaft answers AlterConfigs before the broker's metadata shows the change."""
    for _ in range(100):
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = response.to_object()["resources"][0]["config_entries"]
        if any(e["config_names"] == key and e["config_value"] == value for e in entries):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{topic} never showed {key}={value}")


async def test_creates_every_topic_once_and_reports_no_drift(kafka_bootstrap_servers: str) -> None:
    settings = _settings(kafka_bootstrap_servers)
    specs = topic_specs(settings)
    names = [s.name for s in specs]
    try:
        first = await ensure_topics(kafka_bootstrap_servers, specs)
        again = await ensure_topics(kafka_bootstrap_servers, specs)
        assert sorted(first.created) == sorted(names)
        assert first.drift == []
        assert again.created == []
        assert sorted(again.existing) == sorted(names)
        assert again.drift == []
        assert set(names) <= await existing_topics(kafka_bootstrap_servers)
    finally:
        await _delete(kafka_bootstrap_servers, names)


async def test_reports_config_and_partition_drift_without_changing_anything(
    kafka_bootstrap_servers: str,
) -> None:
    settings = _settings(kafka_bootstrap_servers)
    specs = topic_specs(settings)
    raw, events = settings.topic("raw"), settings.topic("events")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        # Someone created `raw` by hand with the wrong partition count...
        await admin.create_topics([NewTopic(raw, 5, 1)])
        await ensure_topics(kafka_bootstrap_servers, specs)
        # ...and later shortened the retention of `events`.
        resource = ConfigResource(
            ConfigResourceType.TOPIC, events, configs={"retention.ms": "3600000"}
        )
        await admin.alter_configs([resource])
        await _until_config(admin, events, "retention.ms", "3600000")
        report = await ensure_topics(kafka_bootstrap_servers, specs)
        found = {(d.topic, d.what): (d.wanted, d.actual) for d in report.drift}
        # The broker defaults of the hand-made topic (7-day retention, delete policy) happen
        # to be what we want; its message size is the broker's, smaller than the largest
        # delivery we accept. AlterConfigs replaces a topic's whole config set, so `events`
        # lost its message size too. So exactly these four differences remain:
        for topic in (raw, events):
            spec = next(spec for spec in specs if spec.name == topic)
            size_wanted, size_found = found.pop((topic, "max.message.bytes"))
            assert size_wanted == dict(spec.configs)["max.message.bytes"]
            assert int(size_found) < int(size_wanted)  # the broker's default
        assert found == {
            (raw, "partitions"): ("3", "5"),
            (events, "retention.ms"): ("-1", "3600000"),
        }
        described = await admin.describe_topics([raw])
        assert len(described[0]["partitions"]) == 5  # reported, never "fixed"
    finally:
        await admin.close()
        await _delete(kafka_bootstrap_servers, [s.name for s in specs])
