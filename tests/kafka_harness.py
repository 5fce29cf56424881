"""Real Kafka for the test suite: where it comes from, shared safely, torn down afterwards.

Order of preference for the single-broker cluster (``kafka_bootstrap_servers`` fixture):

1. ``KAFKA_BOOTSTRAP_SERVERS`` (or ``DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS``) from the environment;
2. the project's own local stack (needs ``java`` and ``mvn``), in ``.deskstream/test/`` with
   port base 19192, so it never meets a developer's dev cluster on 19092;
3. ``apache/kafka`` through testcontainers, when a Docker daemon answers;
4. otherwise the tests skip, or fail when ``DESKSTREAM_REQUIRE_KAFKA=1`` (CI sets it).

The test clusters run ``DESKSTREAM_KAFKA_VERSION`` (the settings' default otherwise), so
``DESKSTREAM_KAFKA_VERSION=3.9.2 make test`` runs the suite on Kafka 3.9. A second suite on
another version beside a first one needs its own folder and ports:
``DESKSTREAM_TEST_STATE_DIR`` and ``DESKSTREAM_TEST_PORT_BASE`` (single broker at the base,
three brokers at base + 100, the CLI lifecycle test at base + 200, the version matrix from
base + 300).

Two pytest sessions on one machine share a test cluster through lease files: the cluster is
stopped and purged by the last session that leaves, never under another one's feet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from app.kafka_local import (
    ClusterInfo,
    cluster_status,
    kill_node,
    start_cluster,
    start_node,
    stop_cluster,
)
from app.kafka_local.jars import locked
from app.kafka_local.probe import describe_cluster
from app.kafka_local.procs import is_alive
from app.kafka_local.registry import start_registry, stop_registry
from app.settings import Settings, load_settings
from schemas.errors import KafkaStackError

__all__ = [
    "CLUSTER3_PORT_BASE",
    "LIFECYCLE_PORT_BASE",
    "SINGLE_PORT_BASE",
    "TEST_STATE_DIR",
    "VERSIONS_PORT_BASE",
    "LocalCluster",
    "TopicFactory",
    "docker_available",
    "docker_kafka",
    "env_bootstrap_servers",
    "env_registry_url",
    "harness_settings",
    "kafka_required",
    "leased_registry",
    "local_stack_missing",
    "unavailable",
    "warm_up_group_coordinator",
]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_STATE_DIR = Path(
    os.environ.get("DESKSTREAM_TEST_STATE_DIR") or REPO_ROOT / ".deskstream" / "test"
).absolute()
SINGLE_PORT_BASE = int(os.environ.get("DESKSTREAM_TEST_PORT_BASE") or 19192)
CLUSTER3_PORT_BASE = SINGLE_PORT_BASE + 100
LIFECYCLE_PORT_BASE = SINGLE_PORT_BASE + 200
VERSIONS_PORT_BASE = SINGLE_PORT_BASE + 300


def kafka_required() -> bool:
    return os.environ.get("DESKSTREAM_REQUIRE_KAFKA") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when this run promised a real broker (``DESKSTREAM_REQUIRE_KAFKA=1``)."""
    if kafka_required():
        pytest.fail(f"{reason} (DESKSTREAM_REQUIRE_KAFKA=1: a real broker is required)")
    pytest.skip(reason)


def env_bootstrap_servers() -> str | None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DESKSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def env_registry_url() -> str | None:
    for name in ("SCHEMA_REGISTRY_URL", "DESKSTREAM_SCHEMA_REGISTRY_URL"):
        value = os.environ.get(name, "").strip()
        if value and value.lower() != "none":
            return value
    return None


def local_stack_missing() -> str | None:
    """Why the local stack cannot run here, or None when it can."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not on PATH" if missing else None


def harness_settings(brokers: int, port_base: int, **overrides: Any) -> Settings:
    """Settings for a test cluster: own state dir and ports, never the environment's cluster."""
    return load_settings(
        state_dir=TEST_STATE_DIR,
        kafka_port_base=port_base,
        kafka_brokers=brokers,
        kafka_bootstrap_servers=None,
        **overrides,
    )


@dataclass
class LocalCluster:
    """A test cluster of the local stack, with fault injection for the cluster tests."""

    settings: Settings
    info: ClusterInfo
    killed: set[int] = field(default_factory=set)

    @property
    def bootstrap_servers(self) -> str:
        return self.info.bootstrap_servers

    @property
    def size(self) -> int:
        return self.settings.kafka_brokers

    def node_pid(self, node_id: int) -> int | None:
        return next(n.pid for n in cluster_status(self.settings).nodes if n.node_id == node_id)

    def kill(self, node_id: int) -> int:
        """SIGKILL one node (no clean shutdown: a crash); returns the pid that died."""
        pid = kill_node(self.settings, node_id)
        self.killed.add(node_id)
        return pid

    def restart(self, node_id: int) -> None:
        """Start a killed node again and wait until it serves requests."""
        start_node(self.settings, node_id)
        self.killed.discard(node_id)

    def heal(self) -> None:
        """Bring every killed node back, so the next test gets the whole cluster."""
        for node_id in sorted(self.killed):
            self.restart(node_id)

    @classmethod
    @contextlib.contextmanager
    def leased(cls, brokers: int, port_base: int) -> Iterator[LocalCluster]:
        """Start (or join) the test cluster; stop and purge it when the last user leaves."""
        settings = harness_settings(brokers, port_base)
        leases = TEST_STATE_DIR / "leases" / f"{brokers}-node"
        leases.mkdir(parents=True, exist_ok=True)
        mine = leases / str(os.getpid())
        with locked(leases / ".lock"):
            if not _live_leases(leases, mine):
                # Nobody else uses it: whatever is there is a crashed session's leftover.
                stop_cluster(settings, purge=True, brokers=brokers)
            info = start_cluster(settings, brokers)
            if info.kafka_version != settings.kafka_version:
                # Another live session started it with another version: tests run here
                # would silently test that one.
                raise KafkaStackError(
                    f"the test cluster in {info.cluster_dir} runs Kafka {info.kafka_version} "
                    f"for another test session, this one asks for {settings.kafka_version}; "
                    "give this run its own folder and ports (DESKSTREAM_TEST_STATE_DIR, "
                    "DESKSTREAM_TEST_PORT_BASE) or the same DESKSTREAM_KAFKA_VERSION"
                )
            mine.touch()
        log.info(
            "test kafka cluster ready brokers=%d bootstrap=%s", brokers, info.bootstrap_servers
        )
        try:
            yield cls(settings, info)
        finally:
            with locked(leases / ".lock"):
                mine.unlink(missing_ok=True)
                if not _live_leases(leases, mine):
                    for line in stop_cluster(settings, purge=True, brokers=brokers):
                        log.info("test kafka cluster teardown: %s", line)


@contextlib.contextmanager
def leased_registry(settings: Settings, bootstrap_servers: str) -> Iterator[str]:
    """The test cluster's schema registry (Apicurio, storage in that cluster): started or
    joined; stopped when the last session using it leaves. Yields its Confluent-API URL."""
    leases = TEST_STATE_DIR / "leases" / f"registry-{settings.kafka_brokers}-node"
    leases.mkdir(parents=True, exist_ok=True)
    mine = leases / str(os.getpid())
    with locked(leases / ".lock"):
        try:
            info = start_registry(
                settings, bootstrap_servers, brokers=settings.kafka_brokers, progress=log.info
            )
        except KafkaStackError as exc:
            unavailable(f"no schema registry for this test: {exc}")
        mine.touch()
    log.info("test schema registry ready url=%s", info.url)
    try:
        yield info.url
    finally:
        with locked(leases / ".lock"):
            mine.unlink(missing_ok=True)
            if not _live_leases(leases, mine):
                for line in stop_registry(settings, brokers=settings.kafka_brokers):
                    log.info("test schema registry teardown: %s", line)


def _live_leases(folder: Path, mine: Path) -> list[Path]:
    live = []
    for lease in folder.iterdir():
        if not lease.name.isdigit() or lease == mine:
            continue
        if is_alive(int(lease.name)):
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return live


def docker_available() -> bool:
    try:
        import docker

        return bool(docker.from_env().ping())
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker here"
        return False


@contextlib.contextmanager
def docker_kafka(host_port: int = SINGLE_PORT_BASE) -> Iterator[str]:
    """A single KRaft ``apache/kafka`` container of the settings' Kafka version; yields its
    bootstrap servers."""
    from testcontainers.core.container import DockerContainer

    image = f"apache/kafka:{load_settings().kafka_version}"

    # The broker must advertise the address clients reach it by: the fixed host port.
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{host_port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    container = DockerContainer(image).with_bind_ports(9092, host_port)
    for key, value in env.items():
        container = container.with_env(key, value)
    container.start()
    bootstrap = f"127.0.0.1:{host_port}"
    try:
        deadline = time.monotonic() + 120
        while describe_cluster(bootstrap, timeout=5.0) is None:
            if time.monotonic() > deadline:
                raise KafkaStackError(f"the {image} container did not answer in 120 s")
            time.sleep(1.0)
        yield bootstrap
    finally:
        container.stop()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topic: str, partitions: int) -> None:
    # CreateTopics returns before every partition has a leader; a producer sent at once
    # would only retry, but a test's first fetch offsets would come back empty.
    for _ in range(100):
        described = await admin.describe_topics([topic])
        parts = described[0]["partitions"] if described else []
        if len(parts) == partitions and all(p["leader"] >= 0 for p in parts):
            return
        await asyncio.sleep(0.1)
    raise KafkaStackError(f"topic {topic} has no leader for every partition after 10 s")


async def warm_up_group_coordinator(bootstrap_servers: str, attempts: int = 120) -> int:
    """Make the cluster create ``__consumer_offsets`` now; returns the coordinator's id.

    The offsets topic is created on the first group lookup with the full replication factor.
    In a three-broker cluster that needs all three alive: a test that kills a broker before
    any group existed would see consumer groups hang until the broker returns.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        for _ in range(attempts):
            try:
                return int(await admin.find_coordinator("deskstream-harness-warm-up"))
            except Exception:  # COORDINATOR_NOT_AVAILABLE while the topic is being created
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    raise KafkaStackError(f"no group coordinator on {bootstrap_servers} after {attempts} tries")


class TopicFactory:
    """Creates uniquely named topics (``test.<hint>.<uuid8>``) and deletes them afterwards."""

    def __init__(self, bootstrap_servers: str, prefix: str = "test") -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.created: list[str] = []

    def name(self, hint: str = "topic") -> str:
        return f"{self.prefix}.{hint}.{uuid.uuid4().hex[:8]}"

    async def create(
        self,
        hint: str = "topic",
        *,
        partitions: int = 1,
        replication: int = 1,
        configs: dict[str, str] | None = None,
    ) -> str:
        """Create a fresh topic and wait until it has leaders; returns its name."""
        name = self.name(hint)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication, topic_configs=configs or {})]
            )
            for topic, code, *rest in response.topic_errors:
                if code != 0:
                    message = rest[0] if rest else ""
                    raise for_code(code)(f"creating {topic}: {message}")
            self.created.append(name)
            await _wait_for_leaders(admin, name, partitions)
        finally:
            await admin.close()
        return name

    async def delete_all(self) -> None:
        if not self.created:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        try:
            await admin.start()
            await admin.delete_topics(self.created)
        except Exception as exc:  # best effort: the test cluster is purged anyway
            log.warning("test topics not deleted topics=%s error=%r", self.created, exc)
        finally:
            await admin.close()
            self.created.clear()
