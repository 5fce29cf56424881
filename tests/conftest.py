"""Shared pytest fixtures for the Deskstream test suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.kafka_local.probe import run_sync
from tests.kafka_harness import (
    CLUSTER3_PORT_BASE,
    SINGLE_PORT_BASE,
    LocalCluster,
    TopicFactory,
    docker_available,
    docker_kafka,
    env_bootstrap_servers,
    env_registry_url,
    harness_settings,
    leased_registry,
    local_stack_missing,
    unavailable,
    warm_up_group_coordinator,
)

# ------------------------------------------------------------------------------------------
# Kafka broker fixtures (tests/kafka_harness.py). Tests that use them are marked
# `kafka` / `cluster` automatically too, so `pytest -m "not kafka and not cluster"` never
# starts a JVM. Skips become failures with DESKSTREAM_REQUIRE_KAFKA=1 (CI).
# ------------------------------------------------------------------------------------------

_KAFKA_FIXTURES = {"kafka_bootstrap_servers", "kafka_topics", "schema_registry_url"}
_CLUSTER_FIXTURES = {"kafka_cluster3"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if used & _CLUSTER_FIXTURES:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> Iterator[str]:
    """A single-broker cluster's bootstrap servers: env, local stack, Docker, or skip."""
    external = env_bootstrap_servers()
    if external:
        yield external
        return
    missing = local_stack_missing()
    if missing is None:
        with LocalCluster.leased(1, SINGLE_PORT_BASE) as cluster:
            yield cluster.bootstrap_servers
        return
    if docker_available():
        with docker_kafka(SINGLE_PORT_BASE) as bootstrap:
            yield bootstrap
        return
    unavailable(
        f"no Kafka for this test: KAFKA_BOOTSTRAP_SERVERS is unset, the local stack cannot "
        f"run ({missing}) and no Docker daemon answers"
    )


@pytest.fixture(scope="session")
def schema_registry_url(kafka_bootstrap_servers: str) -> Iterator[str]:
    """A Confluent-API schema registry whose storage is the test broker: the environment's
    ``SCHEMA_REGISTRY_URL``, else the local stack's Apicurio Registry (needs Java 21+)."""
    external = env_registry_url()
    if external:
        yield external
        return
    if env_bootstrap_servers() is not None or local_stack_missing() is not None:
        unavailable(
            "no schema registry for this test: SCHEMA_REGISTRY_URL is unset and the broker "
            "is not the local stack, beside which the harness runs one"
        )
    with leased_registry(harness_settings(1, SINGLE_PORT_BASE), kafka_bootstrap_servers) as url:
        yield url


@pytest.fixture(scope="session")
def kafka_cluster3() -> Iterator[LocalCluster]:
    """A three-broker local cluster (port base 19292 by default) whose nodes tests may kill."""
    external = env_bootstrap_servers()
    if external:
        unavailable(
            f"three-broker fault tests need the local stack, but KAFKA_BOOTSTRAP_SERVERS="
            f"{external} points the suite at an external cluster"
        )
    missing = local_stack_missing()
    if missing is not None:
        unavailable(f"three-broker fault tests need the local stack, which cannot run: {missing}")
    with LocalCluster.leased(3, CLUSTER3_PORT_BASE) as cluster:
        run_sync(lambda: warm_up_group_coordinator(cluster.bootstrap_servers))
        yield cluster


@pytest.fixture
def kafka_cluster3_faults(kafka_cluster3: LocalCluster) -> Iterator[LocalCluster]:
    """The three-broker cluster for one fault test: nodes it killed are restarted after it."""
    try:
        yield kafka_cluster3
    finally:
        kafka_cluster3.heal()


@pytest.fixture
async def kafka_topics(kafka_bootstrap_servers: str) -> AsyncIterator[TopicFactory]:
    """``await kafka_topics.create("events", partitions=3)`` → a fresh, unique topic name."""
    factory = TopicFactory(kafka_bootstrap_servers)
    try:
        yield factory
    finally:
        await factory.delete_all()


# ------------------------------------------------------------------ end of Kafka fixtures --
