"""Create Deskstream's topics idempotently and report drift from the wanted layout.

Drift is reported, never "fixed" silently: lowering partitions is impossible in Kafka and
raising them re-maps keys (breaking per-entity ordering and table co-partitioning), so an
operator decides. Config drift (say, someone shortened ``retention.ms``) is reported with the
wanted and actual values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from app.topics import TopicSpec
from schemas.errors import KafkaStackError

__all__ = [
    "Drift",
    "TopicReport",
    "ensure_topics",
    "existing_topics",
    "partition_count",
    "spec_like",
]

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_VISIBLE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference between a wanted and an actual topic property."""

    topic: str
    what: str
    wanted: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.what} is {self.actual}, wanted {self.wanted}"


@dataclass(frozen=True, slots=True)
class TopicReport:
    created: list[str]
    existing: list[str]
    drift: list[Drift]


async def _admin(bootstrap_servers: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise KafkaStackError(
            f"cannot reach Kafka at {bootstrap_servers} ({type(exc).__name__}); start the local "
            "stack with `deskstream kafka up` or set KAFKA_BOOTSTRAP_SERVERS to a running cluster"
        ) from exc
    return admin


async def existing_topics(bootstrap_servers: str) -> set[str]:
    admin = await _admin(bootstrap_servers)
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def partition_count(bootstrap_servers: str, topic: str) -> int:
    """How many partitions ``topic`` has; 0 when it does not exist."""
    admin = await _admin(bootstrap_servers)
    try:
        described = await admin.describe_topics([topic])
    except KafkaError as exc:
        raise KafkaStackError(
            f"cannot describe topic {topic} ({type(exc).__name__}: {exc}); check the brokers"
        ) from exc
    finally:
        await admin.close()
    return sum(
        len(t["partitions"]) for t in described if t["topic"] == topic and not t["error_code"]
    )


async def ensure_topics(bootstrap_servers: str, specs: Sequence[TopicSpec]) -> TopicReport:
    """Create the missing topics, then compare every topic with its spec."""
    admin = await _admin(bootstrap_servers)
    try:
        present = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in present]
        created = await _create(admin, missing) if missing else []
        await _until_visible(admin, created)
        actual = await _describe(admin, specs)
    except KafkaError as exc:
        raise KafkaStackError(
            f"Kafka refused a topic request ({type(exc).__name__}: {exc}); check the brokers' "
            "logs (`deskstream kafka status`) and run `deskstream topics create` again"
        ) from exc
    finally:
        await admin.close()
    drift = [d for s in specs for d in _drift(s, actual.get(s.name))]
    existing = [s.name for s in specs if s.name not in created]
    for d in drift:
        log.warning("topic drift topic=%s what=%s wanted=%s actual=%s", *_fields(d))
    return TopicReport(created=created, existing=existing, drift=drift)


#: what a copy of a topic takes over from the original (``spec_like``)
_COPIED_CONFIGS = ("cleanup.policy", "retention.ms", "max.message.bytes", "min.insync.replicas")


async def spec_like(bootstrap_servers: str, original: str, name: str) -> TopicSpec:
    """A spec for topic ``name`` laid out like the existing topic ``original``: the same
    partitions (so the same keys meet in the same partitions), replication, retention, cleanup
    policy and message size."""
    admin = await _admin(bootstrap_servers)
    probe = TopicSpec(original, original, 0, 0, {key: "" for key in _COPIED_CONFIGS})
    try:
        actual = (await _describe(admin, [probe])).get(original)
    except KafkaError as exc:
        raise KafkaStackError(
            f"cannot describe topic {original} ({type(exc).__name__}: {exc}); check the brokers"
        ) from exc
    finally:
        await admin.close()
    if actual is None:
        raise KafkaStackError(f"topic {original} does not exist; check its name")
    return TopicSpec(
        logical=name,
        name=name,
        partitions=actual.partitions,
        replication=actual.replication,
        configs=dict(actual.configs),
        key=f"as {original}",
        value=f"as {original}",
    )


def _fields(d: Drift) -> tuple[str, str, str, str]:
    return d.topic, d.what, d.wanted, d.actual


async def _create(admin: AIOKafkaAdminClient, specs: Iterable[TopicSpec]) -> list[str]:
    new = [
        NewTopic(
            name=s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication,
            topic_configs=dict(s.configs),
        )
        for s in specs
    ]
    response = await admin.create_topics(new, timeout_ms=30000)
    created: list[str] = []
    problems: dict[str, list[str]] = {}  # one line per distinct broker message
    # Response shapes differ across protocol versions; the tuple always starts name, code.
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            created.append(name)
            log.info("topic created topic=%s", name)
        elif code != _TOPIC_ALREADY_EXISTS:  # another worker won the race: fine
            problems.setdefault(f"error {code}: {message or 'no message'}", []).append(name)
    if problems:
        raise KafkaStackError(
            "Kafka refused to create topics: "
            + "; ".join(f"{', '.join(names)}: {why}" for why, names in problems.items())
            + ". A replication factor above the number of brokers is the usual cause: set "
            "DESKSTREAM_REPLICATION_FACTOR or add brokers, then run `deskstream topics create`"
        )
    return created


async def _until_visible(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until new topics have a leader for every partition: a broker answers
    CreateTopics before its metadata shows them, and a drift check made at that moment would
    report freshly created topics as missing."""
    deadline = asyncio.get_running_loop().time() + _VISIBLE_TIMEOUT
    pending = set(names)
    while pending:
        for topic in await admin.describe_topics(sorted(pending)):
            partitions = topic["partitions"]
            if partitions and all(p["leader"] >= 0 for p in partitions):
                pending.discard(topic["topic"])
        if not pending:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise KafkaStackError(
                f"topics {', '.join(sorted(pending))} were created but have no leader after "
                f"{_VISIBLE_TIMEOUT:.0f} s; check the brokers (`deskstream kafka status`)"
            )
        await asyncio.sleep(0.2)


@dataclass(frozen=True, slots=True)
class _Actual:
    partitions: int
    replication: int
    configs: dict[str, str]


async def _describe(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> dict[str, _Actual]:
    names = [s.name for s in specs]
    layout: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics(names):
        partitions = topic["partitions"]
        replicas = min((len(p["replicas"]) for p in partitions), default=0)
        layout[topic["topic"]] = (len(partitions), replicas)
    wanted_keys = {k for s in specs for k in s.configs}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            configs[resource["resource_name"]] = _config_values(resource, wanted_keys)
    return {
        name: _Actual(partitions=p, replication=r, configs=configs.get(name, {}))
        for name, (p, r) in layout.items()
        if p > 0
    }


def _config_values(resource: dict[str, Any], keys: set[str]) -> dict[str, str]:
    return {
        entry["config_names"]: str(entry["config_value"])
        for entry in resource["config_entries"]
        if entry["config_names"] in keys
    }


def _drift(spec: TopicSpec, actual: _Actual | None) -> list[Drift]:
    if actual is None:
        return [Drift(spec.name, "existence", "present", "missing")]
    found: list[Drift] = []
    if actual.partitions != spec.partitions:
        found.append(Drift(spec.name, "partitions", str(spec.partitions), str(actual.partitions)))
    if actual.replication != spec.replication:
        found.append(
            Drift(spec.name, "replication factor", str(spec.replication), str(actual.replication))
        )
    for key, wanted in spec.configs.items():
        have = actual.configs.get(key)
        if have != wanted:
            found.append(Drift(spec.name, key, wanted, "unset" if have is None else have))
    return found
