"""Deskstream's local Apache Kafka: real brokers from Maven Central jars, no Docker needed.

Command line: ``deskstream kafka fetch | up [--brokers 1|3] | down [--purge] | status``.

Python API (all take the validated :class:`app.settings.Settings`; every failure is an
:class:`schemas.errors.KafkaStackError` whose message says what to do next)::

    ensure_jars(settings, progress=...) -> Path
        The libs folder for settings.kafka_version, fetched with Maven once.
    start_cluster(settings, brokers=None, *, progress=..., timeout=180.0) -> ClusterInfo
        Idempotent: a running cluster is reported (ClusterInfo.already_running), never doubled.
    stop_cluster(settings, *, purge=False, brokers=None, progress=..., timeout=30.0) -> list[str]
        SIGTERM, SIGKILL after `timeout`; purge also deletes the data. Returns what it did.
    cluster_status(settings, *, timeout=5.0) -> ClusterInfo
    kill_node(settings, node_id, *, brokers=None, sig=SIGKILL) -> int        (the pid killed)
    start_node(settings, node_id, *, brokers=None, progress=..., timeout=180.0) -> NodeInfo

``ClusterInfo`` carries ``bootstrap_servers``, ``local``, ``size``, ``kafka_version``,
``nodes`` (``NodeInfo``: node_id, state, pid, broker_port, controller_port, node_dir,
data_dir) and ``registered`` (broker id -> address, None when the cluster did not answer).

State lives in ``settings.kafka_dir / "<n>-node"`` (see :mod:`app.kafka_local.layout`), the
jars in ``settings.cache_dir / "kafka-<version>/libs"``. With ``KAFKA_BOOTSTRAP_SERVERS`` set,
``start_cluster`` only checks that cluster answers, ``stop_cluster`` stops nothing and
``cluster_status`` describes it.
"""

from __future__ import annotations

from app.kafka_local.jars import ensure_jars, libs_dir
from app.kafka_local.layout import ClusterLayout, NodeSpec, cluster_layout
from app.kafka_local.stack import (
    ClusterInfo,
    NodeInfo,
    cluster_status,
    kill_node,
    start_cluster,
    start_node,
    stop_cluster,
)

__all__ = [
    "ClusterInfo",
    "ClusterLayout",
    "NodeInfo",
    "NodeSpec",
    "cluster_layout",
    "cluster_status",
    "ensure_jars",
    "kill_node",
    "libs_dir",
    "start_cluster",
    "start_node",
    "stop_cluster",
]
