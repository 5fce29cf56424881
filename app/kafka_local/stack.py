"""Start, stop, inspect and break the local Kafka cluster: the public operations.

Every operation takes the layout's lock, looks at what is really there (pid files against
the process table, storage against ``cluster.id``, ports against the kernel) and either does
the one right thing or raises KafkaStackError saying what it found and what to run next.
With ``KAFKA_BOOTSTRAP_SERVERS`` set, the local stack stays out of the way entirely.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.kafka_local.jars import Progress, ensure_jars, locked
from app.kafka_local.layout import SUPPORTED_SIZES, ClusterLayout, NodeSpec, cluster_layout
from app.kafka_local.nodes import (
    check_ports,
    launch,
    pid_checks,
    port_drift,
    read_version,
    reconcile_pids,
    render_configs,
    wait_serving,
)
from app.kafka_local.probe import ClusterView, describe_cluster
from app.kafka_local.procs import (
    PidState,
    ProcessCheck,
    check_pid_file,
    send_signal,
    stop_process,
    wait_or_kill,
)
from app.kafka_local.registry import stop_registry
from app.kafka_local.storage import (
    check_readable,
    check_storage,
    format_storage,
    read_properties,
)
from app.settings import Settings
from schemas.errors import KafkaStackError

__all__ = [
    "ClusterInfo",
    "NodeInfo",
    "cluster_status",
    "kill_node",
    "start_cluster",
    "start_node",
    "stop_cluster",
]

log = logging.getLogger(__name__)

START_TIMEOUT = 180.0  # three JVMs starting at once on two shared cores take a while
STOP_TIMEOUT = 30.0
EXTERNAL_TIMEOUT = 15.0


def _log_progress(message: str) -> None:
    log.info("%s", message)


@dataclass(frozen=True)
class NodeInfo:
    node_id: int
    state: str  # a PidState value: running, stopped, stale, foreign
    pid: int | None
    broker_port: int
    controller_port: int
    node_dir: Path
    data_dir: Path
    detail: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster as found: local (with its nodes) or the external one of the settings."""

    bootstrap_servers: str
    local: bool
    size: int | None = None
    kafka_version: str | None = None
    cluster_dir: Path | None = None
    nodes: list[NodeInfo] = field(default_factory=list)
    registered: dict[int, str] | None = None  # broker id -> address; None: no answer
    cluster_id: str | None = None
    already_running: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return any(n.state == PidState.RUNNING.value for n in self.nodes)


def _node_info(node: NodeSpec, check: ProcessCheck) -> NodeInfo:
    return NodeInfo(
        node.node_id,
        check.state.value,
        check.pid,
        node.broker_port,
        node.controller_port,
        node.node_dir,
        node.data_dir,
        check.detail,
    )


def _info(
    layout: ClusterLayout,
    view: ClusterView | None,
    *,
    already_running: bool = False,
    notes: list[str] | None = None,
) -> ClusterInfo:
    checks = pid_checks(layout)
    return ClusterInfo(
        bootstrap_servers=layout.bootstrap_servers,
        local=True,
        size=layout.size,
        kafka_version=read_version(layout) or layout.kafka_version,
        cluster_dir=layout.cluster_dir,
        nodes=[_node_info(n, checks[n.node_id]) for n in layout.nodes],
        registered=None if view is None else view.brokers,
        cluster_id=None if view is None else view.cluster_id,
        already_running=already_running,
        notes=notes or [],
    )


def _external(settings: Settings, timeout: float) -> ClusterInfo:
    servers = settings.kafka_bootstrap_servers or ""
    view = describe_cluster(servers, timeout=timeout)
    return ClusterInfo(
        bootstrap_servers=servers,
        local=False,
        registered=None if view is None else view.brokers,
        cluster_id=None if view is None else view.cluster_id,
        notes=["KAFKA_BOOTSTRAP_SERVERS is set: the local stack is not used"],
    )


def _local_only(settings: Settings, what: str) -> None:
    if settings.kafka_bootstrap_servers:
        raise KafkaStackError(
            f"{what} works on the local stack only, but KAFKA_BOOTSTRAP_SERVERS="
            f"{settings.kafka_bootstrap_servers} is set; unset it to use the local stack"
        )


def _refuse_other_size(settings: Settings, layout: ClusterLayout) -> None:
    """A running cluster of the other size in this state dir may hold our ports: say so."""
    ours = {port for node in layout.nodes for port in (node.broker_port, node.controller_port)}
    for size in SUPPORTED_SIZES:
        if size == layout.size:
            continue
        # Any valid port base will do: only the other size's folders matter here.
        other = cluster_layout(settings.model_copy(update={"kafka_port_base": 1024}), size)
        checks = pid_checks(other)
        for node in other.nodes:
            if checks[node.node_id].state is not PidState.RUNNING:
                continue
            # Its ports are whatever it was started with, not what today's settings say.
            listeners = read_properties(node.config_path).get("listeners", "")
            taken = {int(port) for port in re.findall(r":(\d+)", listeners)}
            if taken & ours:
                raise KafkaStackError(
                    f"the {size}-node cluster in {other.cluster_dir} is running on ports "
                    f"{sorted(taken & ours)} that the {layout.size}-node one needs; stop it "
                    "with `deskstream kafka down` first"
                )


def _start_nodes(
    settings: Settings,
    layout: ClusterLayout,
    to_start: Sequence[NodeSpec],
    progress: Progress,
    timeout: float,
) -> ClusterView:
    running_version = read_version(layout)
    if len(to_start) < layout.size and running_version not in (None, layout.kafka_version):
        raise KafkaStackError(
            f"the running nodes of this cluster are Kafka {running_version}, settings ask for "
            f"{layout.kafka_version}; run `deskstream kafka down` first, or set "
            f"DESKSTREAM_KAFKA_VERSION={running_version}"
        )
    check_ports(to_start, progress)
    cluster_id = check_storage(layout)  # before any download: a broken folder fails fast
    if cluster_id is not None:
        check_readable(layout)
    libs = ensure_jars(settings, progress)
    if cluster_id is None:
        render_configs(layout, layout.nodes)
        progress(f"formatting storage of {layout.size} node(s) in {layout.cluster_dir} ...")
        cluster_id = format_storage(layout, libs, settings.kafka_heap)
    else:
        render_configs(layout, to_start)
    layout.version_path.write_text(layout.kafka_version + "\n", encoding="utf-8")
    ids = ", ".join(str(n.node_id) for n in to_start)
    progress(f"starting Kafka {layout.kafka_version} node(s) {ids} (cluster id {cluster_id}) ...")
    pids = {node.node_id: launch(layout, node, libs, settings.kafka_heap) for node in to_start}
    return wait_serving(layout, pids, timeout, progress)


def start_cluster(
    settings: Settings,
    brokers: int | None = None,
    *,
    progress: Progress = _log_progress,
    timeout: float = START_TIMEOUT,
) -> ClusterInfo:
    """Bring the cluster up; a running one is reported (``already_running``), never doubled.

    Nodes of a partly running cluster (one crashed, one killed) are started again.
    """
    if settings.kafka_bootstrap_servers:
        info = _external(settings, EXTERNAL_TIMEOUT)
        if info.registered is None:
            raise KafkaStackError(
                f"KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers} does not answer a metadata "
                f"request within {EXTERNAL_TIMEOUT:.0f} s; start that cluster, fix the "
                "address, or unset KAFKA_BOOTSTRAP_SERVERS to use the local stack"
            )
        return info
    layout = cluster_layout(settings, brokers)
    with locked(layout.lock_path):
        checks = reconcile_pids(layout, progress)
        to_start = [n for n in layout.nodes if checks[n.node_id].state is not PidState.RUNNING]
        if to_start:
            _refuse_other_size(settings, layout)
            view = _start_nodes(settings, layout, to_start, progress, timeout)
            return _info(layout, view)
        drift = port_drift(layout)
        if drift:
            raise KafkaStackError(
                f"the {layout.size}-node cluster is running with other ports ({'; '.join(drift)});"
                " use the DESKSTREAM_KAFKA_PORT_BASE it was started with, or "
                "`deskstream kafka down` and `up` again"
            )
        progress(f"the {layout.size}-node cluster is already running; checking it answers")
        pids = {i: c.pid for i, c in checks.items() if c.pid is not None}
        view = wait_serving(layout, pids, timeout, progress)
        notes = []
        running_version = read_version(layout)
        if running_version and running_version != settings.kafka_version:
            notes.append(
                f"it runs Kafka {running_version}, not {settings.kafka_version}: "
                "`deskstream kafka down` then `up` to switch"
            )
        return _info(layout, view, already_running=True, notes=notes)


def stop_cluster(
    settings: Settings,
    *,
    purge: bool = False,
    brokers: int | None = None,
    progress: Progress = _log_progress,
    timeout: float = STOP_TIMEOUT,
) -> list[str]:
    """Stop the local cluster(s) (every size unless ``brokers``); returns what it did."""
    if settings.kafka_bootstrap_servers:
        return [
            f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers} is an external "
            "cluster: nothing local to stop" + (" or purge" if purge else "")
        ]
    report: list[str] = []
    for size in [brokers] if brokers else list(SUPPORTED_SIZES):
        layout = cluster_layout(settings, size)
        # The registry first: its storage is this cluster's Kafka.
        report += stop_registry(settings, brokers=size, progress=progress)
        with locked(layout.lock_path):
            report += _stop_layout(layout, purge, progress, timeout)
    return report or ["no local Kafka cluster is running"]


def _stop_layout(
    layout: ClusterLayout, purge: bool, progress: Progress, timeout: float
) -> list[str]:
    report: list[str] = []
    checks = reconcile_pids(layout, report.append)
    running = [
        (n, pid)
        for n in layout.nodes
        if checks[n.node_id].state is PidState.RUNNING and (pid := checks[n.node_id].pid)
    ]
    if running:
        progress(f"stopping {len(running)} node(s) of the {layout.size}-node cluster ...")
    # SIGTERM to all first: the nodes shut down in parallel instead of each one waiting
    # for a quorum its already-stopped peers can no longer give.
    for _, pid in running:
        send_signal(pid, signal.SIGTERM)
    for node, pid in running:
        killed = wait_or_kill(pid, timeout)
        node.pid_path.unlink(missing_ok=True)
        report.append(
            f"stopped node {node.node_id} (pid {pid}, "
            f"{f'SIGKILL after {timeout:.0f} s' if killed else 'SIGTERM'})"
        )
        log.info("kafka node stopped node=%d pid=%d killed=%s", node.node_id, pid, killed)
    if purge and layout.cluster_dir.exists():
        shutil.rmtree(layout.cluster_dir)
        report.append(f"deleted {layout.cluster_dir}")
        log.info("kafka cluster purged dir=%s", layout.cluster_dir)
    return report


def cluster_status(settings: Settings, *, timeout: float = 5.0) -> ClusterInfo:
    """The running local cluster (any size), else the configured one; or the external one."""
    if settings.kafka_bootstrap_servers:
        return _external(settings, timeout)
    layouts = [cluster_layout(settings, size) for size in SUPPORTED_SIZES]
    with_pids = [lay for lay in layouts if any(c.pid for c in pid_checks(lay).values())]
    layout = with_pids[0] if with_pids else cluster_layout(settings)
    checks = pid_checks(layout)
    running = any(c.state is PidState.RUNNING for c in checks.values())
    view = describe_cluster(layout.bootstrap_servers, timeout=timeout) if running else None
    notes = [] if running else ["not running: `deskstream kafka up` starts it"]
    if running:
        notes += [f"{line}: status shows today's settings" for line in port_drift(layout)]
    if any(c.state in (PidState.STALE, PidState.FOREIGN) for c in checks.values()):
        notes.append("stale pid files: `deskstream kafka up` or `down` cleans them")
    return _info(layout, view, notes=notes)


def kill_node(
    settings: Settings, node_id: int, *, brokers: int | None = None, sig: int = signal.SIGKILL
) -> int:
    """Fault injection: signal one running node (SIGKILL by default); its pid once gone."""
    _local_only(settings, "kill_node")
    layout = cluster_layout(settings, brokers)
    node = layout.node(node_id)
    with locked(layout.lock_path):
        check = check_pid_file(node.pid_path, node.config_path)
        if check.state is not PidState.RUNNING or check.pid is None:
            raise KafkaStackError(
                f"node {node_id} of the {layout.size}-node cluster is not running "
                f"({check.state.value}{': ' + check.detail if check.detail else ''})"
            )
        stop_process(check.pid, timeout=STOP_TIMEOUT, sig=sig)
        node.pid_path.unlink(missing_ok=True)
        log.info("kafka node killed node=%d pid=%d signal=%d", node_id, check.pid, sig)
        return check.pid


def start_node(
    settings: Settings,
    node_id: int,
    *,
    brokers: int | None = None,
    progress: Progress = _log_progress,
    timeout: float = START_TIMEOUT,
) -> NodeInfo:
    """Start one stopped node of a formatted cluster again; returns it once it serves."""
    _local_only(settings, "start_node")
    layout = cluster_layout(settings, brokers)
    node = layout.node(node_id)
    with locked(layout.lock_path):
        checks = reconcile_pids(layout, progress)
        if checks[node_id].state is not PidState.RUNNING:
            if check_storage(layout) is None:
                raise KafkaStackError(
                    f"the {layout.size}-node cluster was never formatted; start it with "
                    "`deskstream kafka up` first"
                )
            _start_nodes(settings, layout, [node], progress, timeout)
        return _node_info(node, check_pid_file(node.pid_path, node.config_path))
