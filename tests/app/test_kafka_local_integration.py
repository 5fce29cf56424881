"""The local Kafka stack against real brokers: the CLI lifecycle on its own cluster (its
schema registry keeping schemas across a restart), and a three-broker cluster that keeps
accepting ``acks=all`` writes with one broker killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka_local import cluster_layout
from app.kafka_local.layout import HOST, ClusterLayout
from app.kafka_local.probe import describe_cluster
from app.kafka_local.procs import command_line, find_brokers, is_alive
from app.kafka_local.registry import registry_layout
from app.settings import Settings
from tests.kafka_harness import (
    LIFECYCLE_PORT_BASE,
    TEST_STATE_DIR,
    LocalCluster,
    TopicFactory,
    harness_settings,
    local_stack_missing,
    unavailable,
)


@dataclass(frozen=True)
class Cli:
    """Runs ``deskstream kafka ...`` as a separate process, as a developer would."""

    env: dict[str, str]
    layout: ClusterLayout
    settings: Settings

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-c",
            "import sys; from app.cli import main; sys.exit(main())",
            "kafka",
            *args,
        ]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=240, check=False
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def pids(self) -> list[int]:
        return [int(node.pid_path.read_text()) for node in self.layout.nodes]


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    missing = local_stack_missing()
    if missing:
        unavailable(f"the local Kafka stack cannot run here: {missing}")
    state_dir = TEST_STATE_DIR / "lifecycle"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KAFKA_BOOTSTRAP_SERVERS", "DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS")
    }
    env |= {
        "DESKSTREAM_STATE_DIR": str(state_dir),
        "DESKSTREAM_KAFKA_PORT_BASE": str(LIFECYCLE_PORT_BASE),
    }
    settings = harness_settings(1, LIFECYCLE_PORT_BASE).model_copy(update={"state_dir": state_dir})
    runner = Cli(env, cluster_layout(settings), settings)
    runner("down", "--purge")  # whatever a crashed earlier run left behind
    try:
        yield runner
    finally:
        runner("down", "--purge", check=False)  # keeps the jar cache for the next run


pytestmark = [pytest.mark.kafka, pytest.mark.java]


def test_up_twice_gives_one_cluster_with_the_same_pids(cli: Cli) -> None:
    first = cli("up", "--no-registry")
    assert first.stdout.strip() == f"127.0.0.1:{LIFECYCLE_PORT_BASE}"
    pids = cli.pids()

    second = cli("up", "--no-registry")

    assert "already running; nothing started" in second.stderr
    assert second.stdout.strip() == f"127.0.0.1:{LIFECYCLE_PORT_BASE}"
    assert cli.pids() == pids
    brokers = find_brokers([node.config_path for node in cli.layout.nodes])
    assert list(brokers.values()) == pids  # exactly one JVM for the node
    view = describe_cluster(cli.layout.bootstrap_servers)
    assert view is not None
    assert sorted(view.brokers) == [1]


def test_status_shows_the_running_node(cli: Cli) -> None:
    cli("up", "--no-registry")
    (pid,) = cli.pids()
    result = cli("status")
    assert re.search(rf"node 1: running\s+pid {pid}\s", result.stderr), result.stderr
    assert "registered brokers: [1]" in result.stderr


async def test_the_local_broker_round_trips_a_message(cli: Cli) -> None:
    cli("up", "--no-registry")
    bootstrap = cli.layout.bootstrap_servers
    topics = TopicFactory(bootstrap)
    topic = await topics.create("roundtrip")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello")
    finally:
        await producer.stop()
    values = await _consume(bootstrap, topic, expected=1)
    assert values == [b"hello"]
    await topics.delete_all()


def test_a_crashed_broker_is_reported_stale_and_started_again(cli: Cli) -> None:
    cli("up", "--no-registry")
    (old_pid,) = cli.pids()
    os.kill(old_pid, 9)
    _wait_gone(old_pid)

    status = cli("status", check=False)
    assert status.returncode == 1
    assert re.search(rf"node 1: stale\s+pid {old_pid}\s.*process {old_pid} is gone", status.stderr)

    again = cli("up", "--no-registry")
    assert "removing stale pid file" in again.stderr
    (new_pid,) = cli.pids()
    assert new_pid != old_pid
    assert is_alive(new_pid)


def test_a_broker_dying_during_start_up_reports_its_log(cli: Cli) -> None:
    cli("up", "--no-registry")  # formatted storage: the next start goes straight to the JVM
    cli("down")
    broken = Cli({**cli.env, "DESKSTREAM_KAFKA_HEAP": "1k"}, cli.layout, cli.settings)

    result = broken("up", "--no-registry", check=False)

    assert result.returncode == 1
    assert "node 1" in result.stderr
    assert "exited during start-up" in result.stderr
    assert "heap" in result.stderr.lower()  # the JVM's own words, from kafka.out
    assert not cli.layout.nodes[0].pid_path.exists()


def test_down_stops_the_broker_and_purge_deletes_its_data(cli: Cli) -> None:
    cli("up", "--no-registry")
    (pid,) = cli.pids()
    node = cli.layout.nodes[0]

    down = cli("down")

    assert f"stopped node 1 (pid {pid}, SIGTERM)" in down.stdout
    assert not is_alive(pid)
    assert not node.pid_path.exists()
    assert (node.data_dir / "meta.properties").exists()
    stopped = cli("status", check=False)
    assert stopped.returncode == 1
    assert re.search(r"node 1: stopped", stopped.stderr)

    purge = cli("down", "--purge")
    assert f"deleted {cli.layout.cluster_dir}" in purge.stdout
    assert not cli.layout.cluster_dir.exists()


def test_the_registry_keeps_its_schemas_in_kafka_across_a_restart(cli: Cli) -> None:
    up = cli("up")  # with the registry, the default
    registry = registry_layout(cli.settings)
    assert f"schema registry is serving on {registry.url}" in up.stderr
    pid = int(registry.pid_path.read_text())
    argv = command_line(pid) or []
    # Bound to loopback only, the management interface too; storage in this cluster's Kafka.
    assert f"-Dquarkus.http.host={HOST}" in argv
    assert f"-Dquarkus.management.host={HOST}" in argv
    assert "-Dapicurio.storage.kind=kafkasql" in argv
    assert f"-Dapicurio.kafkasql.bootstrap.servers={cli.layout.bootstrap_servers}" in argv
    assert re.search(rf"schema registry: running, answering, {registry.url}", cli("status").stderr)
    schema = {"type": "record", "name": "Probe", "fields": [{"name": "n", "type": "long"}]}
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    registered = httpx.post(
        f"{registry.url}/subjects/probe-value/versions",
        json={"schema": json.dumps(schema)},
        headers=headers,
        timeout=10,
    )
    assert registered.status_code == 200, registered.text
    schema_id = registered.json()["id"]

    down = cli("down")
    assert f"stopped the schema registry (pid {pid}, SIGTERM)" in down.stdout
    assert not is_alive(pid)
    cli("up")

    assert int(registry.pid_path.read_text()) != pid
    found = httpx.get(f"{registry.url}/subjects/probe-value/versions/1", timeout=10).json()
    assert found["id"] == schema_id
    assert json.loads(found["schema"])["name"] == "Probe"
    cli("down")


# -- the session fixtures other tests build on ---------------------------------------------


async def test_kafka_topics_fixture_creates_unique_topics(
    kafka_bootstrap_servers: str, kafka_topics: TopicFactory
) -> None:
    first = await kafka_topics.create("events", partitions=3)
    second = await kafka_topics.create("events", partitions=3)

    assert first != second
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([first, second])
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == {first: 3, second: 3}


# -- three brokers, one killed -------------------------------------------------------------

MESSAGES = 300


@pytest.mark.cluster
async def test_three_brokers_keep_acks_all_writes_with_one_broker_killed(
    kafka_cluster3_faults: LocalCluster,
) -> None:
    cluster = kafka_cluster3_faults
    bootstrap = cluster.bootstrap_servers
    topics = TopicFactory(bootstrap)
    topic = await topics.create(
        "replicated", partitions=3, replication=3, configs={"min.insync.replicas": "2"}
    )
    victim = await _leader_of_partition_zero(bootstrap, topic)

    dead_pid = cluster.kill(victim)

    assert not is_alive(dead_pid)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=60_000,
    )
    await producer.start()
    try:
        sent = [
            await producer.send(topic, key=str(i % 7).encode(), value=str(i).encode())
            for i in range(MESSAGES)
        ]
        offsets = [(await fut).offset for fut in sent]
    finally:
        await producer.stop()
    assert len(offsets) == MESSAGES

    values = await _consume(bootstrap, topic, expected=MESSAGES)

    assert sorted(int(v) for v in values) == list(range(MESSAGES))  # all of them, once each
    cluster.restart(victim)
    view = describe_cluster(bootstrap)
    assert view is not None
    assert sorted(view.brokers) == [1, 2, 3]
    await topics.delete_all()


async def _leader_of_partition_zero(bootstrap: str, topic: str) -> int:
    # Brokers learn about a new topic a moment apart: ask until the one asked knows it.
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(100):
            (described,) = await admin.describe_topics([topic])
            zero = [p for p in described["partitions"] if p["partition"] == 0]
            if zero and zero[0]["leader"] >= 0:
                assert sorted(zero[0]["replicas"]) == [1, 2, 3]
                return int(zero[0]["leader"])
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError(f"partition 0 of {topic} has no leader")


async def _consume(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """Read ``topic`` from the start in a fresh consumer group until ``expected`` arrived.

    The loop is bounded (a hung broker fails the test instead of hanging it); it asserts
    nothing about time.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(120):
            batches = await consumer.getmany(timeout_ms=1000)
            values += [msg.value for msgs in batches.values() for msg in msgs if msg.value]
            if len(values) >= expected:
                break
    finally:
        await consumer.stop()
    return values


def _wait_gone(pid: int) -> None:
    for _ in range(100):
        if not is_alive(pid):
            return
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} still alive")
