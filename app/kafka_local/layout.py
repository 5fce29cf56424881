"""Pure layout of the local Kafka cluster: folders, ports and the files each node runs with.

Nothing here touches the disk or starts a process, so every rule (ports, replication factors,
what Kafka 4.x needs beyond 3.9) is unit-tested without a broker.

Kafka 4 is KRaft-only, as this stack always was. What differs for it here: logging is log4j2
(its own syntax and ``-Dlog4j2.configurationFile``; the jars come from the pom's ``kafka4``
profile), and 4.1+ has share groups, whose state topic gets the cluster's replication. The
storage is formatted the same way on both (``kafka.tools.StorageTool format -t <id> -c
<properties>``): with a static quorum (``controller.quorum.voters``) 4.x needs none of the
``--standalone`` / ``--initial-controllers`` flags of dynamic quorums. None of the properties
4.0 removed (``log.message.format.version``, ``message.format.version``,
``log.message.timestamp.difference.max.ms``, ZooKeeper's) is set here or by ``topics create``.

Node ``i`` of an ``n``-node cluster lives in ``<kafka_dir>/<n>-node/node-<i>/``::

    node-1/
      data/               log.dirs (formatted by StorageTool; holds meta.properties)
      logs/               kafka.logs.dir: server.log and friends
      server.properties   rendered on every start from the settings
      log4j.properties    log4j 1.x (Kafka 3.x) or log4j2 (Kafka 4.x) syntax
      kafka.out           the JVM's stdout/stderr (start-up crashes land here)
      kafka.pid           pid of the running broker

Its broker port is ``port_base + (i-1) * 10`` and its controller port the next one up, so
``19092`` gives 19092/19093, 19102/19103 and 19112/19113. Not the 19092/29092/39092 pattern
often shown for one host: 39092 lies in Linux's ephemeral port range (32768-60999), where an
outgoing connection, or its TIME_WAIT, can hold the port and make a broker restart fail.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings
from schemas.errors import KafkaStackError

__all__ = [
    "ClusterLayout",
    "NodeSpec",
    "cluster_layout",
    "java_command",
    "kafka_version_tuple",
    "new_cluster_id",
    "render_log_config",
    "render_server_properties",
    "uses_log4j2",
]

NODE_PORT_STEP = 10
HOST = "127.0.0.1"
SUPPORTED_SIZES = (1, 3)


@dataclass(frozen=True)
class NodeSpec:
    """Where one combined broker+controller node keeps its files and which ports it binds."""

    node_id: int
    broker_port: int
    controller_port: int
    node_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.node_dir / "logs"

    @property
    def config_path(self) -> Path:
        return self.node_dir / "server.properties"

    @property
    def log_config_path(self) -> Path:
        return self.node_dir / "log4j.properties"

    @property
    def pid_path(self) -> Path:
        return self.node_dir / "kafka.pid"

    @property
    def stdout_path(self) -> Path:
        return self.node_dir / "kafka.out"

    @property
    def server_log_path(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.broker_port}"


@dataclass(frozen=True)
class ClusterLayout:
    """A 1- or 3-node cluster: one cluster id and one quorum shared by all its nodes."""

    size: int
    cluster_dir: Path
    kafka_version: str
    nodes: tuple[NodeSpec, ...]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def quorum_voters(self) -> str:
        return ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes)

    @property
    def cluster_id_path(self) -> Path:
        return self.cluster_dir / "cluster.id"

    @property
    def version_path(self) -> Path:
        """The Kafka version the running nodes were started with (``status`` shows it)."""
        return self.cluster_dir / "kafka.version"

    @property
    def formatted_version_path(self) -> Path:
        """The Kafka version that formatted the storage: an older one cannot read it."""
        return self.cluster_dir / "formatted.version"

    @property
    def lock_path(self) -> Path:
        # Beside the cluster folder, not in it: `down --purge` deletes that folder.
        return self.cluster_dir.parent / f".{self.size}-node.lock"

    @property
    def replication_factor(self) -> int:
        return min(self.size, 3)

    @property
    def min_insync_replicas(self) -> int:
        # Two of three: one broker may die without producers with acks=all noticing.
        return 2 if self.size >= 3 else 1

    def node(self, node_id: int) -> NodeSpec:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KafkaStackError(
            f"the {self.size}-node cluster has no node {node_id}; "
            f"its nodes are {', '.join(str(n.node_id) for n in self.nodes)}"
        )


def kafka_version_tuple(version: str) -> tuple[int, int, int]:
    """``"4.1.1"`` → ``(4, 1, 1)``; anything else is a settings mistake worth a clear error."""
    parts = version.split(".")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if not 2 <= len(numbers) <= 3:
        raise KafkaStackError(
            f"kafka_version {version!r} is not a Kafka release number like 3.9.2; "
            "fix DESKSTREAM_KAFKA_VERSION"
        )
    major, minor, *rest = numbers
    return major, minor, rest[0] if rest else 0


def uses_log4j2(version: str) -> bool:
    """Kafka 4.0 dropped log4j 1.x: its brokers read a log4j2 configuration instead."""
    return kafka_version_tuple(version)[0] >= 4


def _has_share_groups(version: str) -> bool:
    return kafka_version_tuple(version) >= (4, 1, 0)


def cluster_layout(settings: Settings, size: int | None = None) -> ClusterLayout:
    """The layout for ``size`` nodes (default ``settings.kafka_brokers``), paths absolute."""
    size = settings.kafka_brokers if size is None else size
    if size not in SUPPORTED_SIZES:
        raise KafkaStackError(f"the local stack runs 1 or 3 brokers, not {size}; pick 1 or 3")
    kafka_version_tuple(settings.kafka_version)  # fail early on a malformed version
    base = settings.kafka_port_base
    highest = base + (size - 1) * NODE_PORT_STEP + 1
    if highest > 65535:
        raise KafkaStackError(
            f"port base {base} leaves no room for {size} nodes (node {size} would need port "
            f"{highest}); set DESKSTREAM_KAFKA_PORT_BASE to at most "
            f"{65535 - (size - 1) * NODE_PORT_STEP - 1}"
        )
    # Resolved paths: the broker runs with its own working directory and pid checks compare
    # command lines, so a relative state_dir must mean the same folder everywhere, also when
    # it is reached through a link (git worktrees that share one .deskstream).
    cluster_dir = (settings.kafka_dir / f"{size}-node").resolve()
    nodes = tuple(
        NodeSpec(
            node_id=i,
            broker_port=base + (i - 1) * NODE_PORT_STEP,
            controller_port=base + (i - 1) * NODE_PORT_STEP + 1,
            node_dir=cluster_dir / f"node-{i}",
        )
        for i in range(1, size + 1)
    )
    return ClusterLayout(size, cluster_dir, settings.kafka_version, nodes)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Never one starting with ``-``: ``kafka-storage format --cluster-id -x...`` reads it as an
    option (Kafka's own ``Uuid.randomUuid`` draws again for the same reason)."""
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not encoded.startswith("-"):
            return encoded


def render_server_properties(layout: ClusterLayout, node: NodeSpec) -> str:
    """``server.properties`` for one KRaft combined-mode node, loopback only."""
    rf = layout.replication_factor
    isr = layout.min_insync_replicas
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        # A static quorum: every node knows every voter, no dynamic-quorum bootstrap needed.
        "controller.quorum.voters": layout.quorum_voters,
        "listeners": f"PLAINTEXT://{HOST}:{node.broker_port},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{node.broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        # Topics are created explicitly with their partition counts (faust's
        # PartitionsMismatch trap); an auto-created topic would silently get the default.
        "auto.create.topics.enable": "false",
        # Tests and the demo start consumers one by one: don't wait 3 s for more to join.
        "group.initial.rebalance.delay.ms": 0,
        "unclean.leader.election.enable": "false",
    }
    if _has_share_groups(layout.kafka_version):
        props["share.coordinator.state.topic.replication.factor"] = rf
        props["share.coordinator.state.topic.min.isr"] = isr
    header = (
        f"# Rendered by deskstream for node {node.node_id} of {layout.size} "
        f"(Kafka {layout.kafka_version}); edits are overwritten on the next start.\n"
    )
    return header + "".join(f"{key}={value}\n" for key, value in props.items())


def render_log_config(layout: ClusterLayout, node: NodeSpec) -> str:
    """Logging: INFO to a size-capped ``server.log``, WARN and worse also to ``kafka.out``."""
    server_log = node.server_log_path
    if uses_log4j2(layout.kafka_version):
        return _LOG4J2_TEMPLATE.format(server_log=server_log)
    return _LOG4J1_TEMPLATE.format(server_log=server_log)


_PATTERN = "[%d] %p %m (%c)%n"

_LOG4J1_TEMPLATE = f"""\
log4j.rootLogger=INFO, file, stdout
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={{server_log}}
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern={_PATTERN}
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.Threshold=WARN
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern={_PATTERN}
log4j.logger.state.change.logger=WARN
"""

_LOG4J2_TEMPLATE = f"""\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {{server_log}}
appender.file.filePattern = {{server_log}}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = {_PATTERN}
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
appender.stdout.type = Console
appender.stdout.name = stdout
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = {_PATTERN}
appender.stdout.filter.threshold.type = ThresholdFilter
appender.stdout.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.stdout.ref = stdout
logger.statechange.name = state.change.logger
logger.statechange.level = warn
"""


def java_command(
    layout: ClusterLayout, node: NodeSpec, libs_dir: Path, heap: str, main: str = "kafka.Kafka"
) -> list[str]:
    """The JVM command line for one node (``main`` may be ``kafka.tools.StorageTool``)."""
    log_flag = (
        f"-Dlog4j2.configurationFile=file:{node.log_config_path}"
        if uses_log4j2(layout.kafka_version)
        else f"-Dlog4j.configuration=file:{node.log_config_path}"
    )
    return [
        "java",
        f"-Xmx{heap}",
        "-Djava.awt.headless=true",
        log_flag,
        f"-Dkafka.logs.dir={node.logs_dir}",
        "-cp",
        f"{libs_dir}/*",
        main,
    ]
