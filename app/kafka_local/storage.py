"""KRaft storage: is every node formatted, with the one cluster id, and format it if fresh.

A cluster is healthy when all of its nodes carry ``meta.properties`` with the id stored in
``cluster.id`` and their own ``node.id``, or when none has any data yet (then we format all).
Anything in between (an interrupted format, a copied folder, a node wiped by hand) would
start a broker that refuses to join or, worse, a second cluster; it is reported instead.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.kafka_local.layout import (
    ClusterLayout,
    NodeSpec,
    java_command,
    kafka_version_tuple,
    new_cluster_id,
)
from schemas.errors import KafkaStackError

__all__ = [
    "NodeStorage",
    "check_readable",
    "check_storage",
    "format_storage",
    "node_storage",
    "read_properties",
]

log = logging.getLogger(__name__)

PURGE_HINT = "run `deskstream kafka down --purge` (deletes this cluster's data), then `up`"


@dataclass(frozen=True)
class NodeStorage:
    node_id: int
    formatted: bool
    has_data: bool
    cluster_id: str | None = None
    meta_node_id: str | None = None


def read_properties(path: Path) -> dict[str, str]:
    """A Java properties file as a dict (comments and blank lines skipped)."""
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def node_storage(node: NodeSpec) -> NodeStorage:
    meta = node.data_dir / "meta.properties"
    has_data = node.data_dir.is_dir() and any(node.data_dir.iterdir())
    if not meta.is_file():
        return NodeStorage(node.node_id, formatted=False, has_data=has_data)
    props = read_properties(meta)
    return NodeStorage(
        node.node_id,
        formatted=True,
        has_data=True,
        cluster_id=props.get("cluster.id"),
        meta_node_id=props.get("node.id"),
    )


def _stored_cluster_id(layout: ClusterLayout) -> str | None:
    try:
        return layout.cluster_id_path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def check_storage(layout: ClusterLayout) -> str | None:
    """The cluster id when every node is formatted consistently; None when all are fresh.

    Raises KafkaStackError, naming each bad node and the fix, for anything in between.
    """
    nodes = [node_storage(node) for node in layout.nodes]
    stored = _stored_cluster_id(layout)
    problems: list[str] = []
    for st in nodes:
        if st.has_data and not st.formatted:
            problems.append(f"node {st.node_id} has data but no meta.properties")
        elif st.formatted and st.meta_node_id != str(st.node_id):
            problems.append(f"node {st.node_id} was formatted as node.id={st.meta_node_id}")
    formatted = [st for st in nodes if st.formatted]
    if formatted and len(formatted) < len(nodes):
        missing = ", ".join(str(st.node_id) for st in nodes if not st.formatted)
        problems.append(f"node(s) {missing} are not formatted while the others are")
    ids = {st.cluster_id for st in formatted}
    expected = stored or (ids.pop() if len(ids) == 1 else None)
    for st in formatted:
        if st.cluster_id != expected:
            problems.append(
                f"node {st.node_id} belongs to cluster {st.cluster_id}, not {expected or '?'}"
            )
    if problems:
        raise KafkaStackError(
            f"the local {layout.size}-node Kafka storage in {layout.cluster_dir} is half "
            f"formatted: {'; '.join(problems)}. A broker started on it would not join its "
            f"cluster; {PURGE_HINT}"
        )
    if not formatted:
        return None
    if stored is None and expected is not None:
        # All nodes agree; only our bookkeeping file was lost. Recreate it.
        layout.cluster_id_path.write_text(expected + "\n", encoding="utf-8")
        log.warning("kafka cluster id file restored cluster_id=%s", expected)
    return expected


def check_readable(layout: ClusterLayout) -> None:
    """Refuse to start a Kafka older than the one that formatted the storage.

    Formatting writes the release's newest ``metadata.version`` into the cluster metadata
    (4.4 writes 4.4-IVx), and KRaft metadata is never downgraded: a 3.9 broker on storage
    formatted by 4.4 dies at start-up with "Can't read version 4 of BrokerEndpoint". Newer
    brokers on older storage are an ordinary upgrade and start (the metadata version stays
    the old one). Storage formatted before this file was kept is not judged.
    """
    try:
        formatted = layout.formatted_version_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return
    wanted = layout.kafka_version
    if formatted and kafka_version_tuple(wanted)[:2] < kafka_version_tuple(formatted)[:2]:
        raise KafkaStackError(
            f"the local {layout.size}-node Kafka storage in {layout.cluster_dir} was formatted "
            f"by Kafka {formatted}, whose metadata Kafka {wanted} cannot read (KRaft metadata "
            f"is never downgraded); set DESKSTREAM_KAFKA_VERSION={formatted}, or {PURGE_HINT} "
            f"to start afresh on {wanted}"
        )


def format_storage(layout: ClusterLayout, libs_dir: Path, heap: str) -> str:
    """Format every node with one new (or the stored) cluster id; returns the id."""
    cluster_id = _stored_cluster_id(layout) or new_cluster_id()
    layout.cluster_dir.mkdir(parents=True, exist_ok=True)
    # The id is written before any node is formatted, so an interrupted run is still
    # recognised as one cluster (and reported as half formatted, not as two clusters).
    layout.cluster_id_path.write_text(cluster_id + "\n", encoding="utf-8")
    for node in layout.nodes:
        argv = [
            *java_command(layout, node, libs_dir, heap, main="kafka.tools.StorageTool"),
            "format",
            "-t",
            cluster_id,
            "-c",
            str(node.config_path),
        ]
        log.info("kafka storage format node=%d cluster_id=%s", node.node_id, cluster_id)
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=180, check=False, cwd=node.node_dir
            )
        except FileNotFoundError:
            raise KafkaStackError(
                "java is not on PATH; install a JDK (Kafka 3.9 needs Java 11+, 4.x Java 17+) "
                "or point KAFKA_BOOTSTRAP_SERVERS at a running cluster"
            ) from None
        if result.returncode != 0:
            said = (result.stdout + result.stderr).strip().splitlines()[-10:]
            raise KafkaStackError(
                f"formatting node {node.node_id} failed (exit {result.returncode}); "
                f"{PURGE_HINT}. StorageTool said:\n  " + "\n  ".join(said)
            )
    layout.formatted_version_path.write_text(layout.kafka_version + "\n", encoding="utf-8")
    return cluster_id
