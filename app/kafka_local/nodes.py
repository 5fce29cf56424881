"""Node-level mechanics behind :mod:`app.kafka_local.stack`: reconcile pid files, check ports,
render configs, launch brokers and wait until each one serves requests itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from app.kafka_local.jars import Progress
from app.kafka_local.layout import (
    ClusterLayout,
    NodeSpec,
    java_command,
    render_log_config,
    render_server_properties,
)
from app.kafka_local.probe import ClusterView, describe_cluster
from app.kafka_local.procs import (
    PidState,
    PortUser,
    ProcessCheck,
    check_pid_file,
    find_brokers,
    is_alive,
    port_in_use,
    port_users,
    spawn_detached,
    tail,
)
from app.kafka_local.storage import read_properties
from schemas.errors import KafkaStackError

__all__ = [
    "check_ports",
    "launch",
    "pid_checks",
    "port_drift",
    "read_version",
    "reconcile_pids",
    "render_configs",
    "wait_serving",
]

log = logging.getLogger(__name__)

PORT_WAIT = 75.0  # a little over Linux's 60 s TIME_WAIT


def pid_checks(layout: ClusterLayout) -> dict[int, ProcessCheck]:
    return {n.node_id: check_pid_file(n.pid_path, n.config_path) for n in layout.nodes}


def reconcile_pids(layout: ClusterLayout, progress: Progress) -> dict[int, ProcessCheck]:
    """Make pid files tell the truth before acting on them.

    A pid file whose process is gone, or whose pid now belongs to another program, is removed
    (that program is never signalled). A broker of ours still running without a pid file
    (deleted by hand, or a crash between start and write) is adopted, not started twice.
    """
    checks = pid_checks(layout)
    for node in layout.nodes:
        check = checks[node.node_id]
        if check.state in (PidState.STALE, PidState.FOREIGN):
            progress(
                f"node {node.node_id}: removing stale pid file {node.pid_path} ({check.detail}; "
                "the broker stopped without `deskstream kafka down`, e.g. a crash or reboot)"
            )
            log.info(
                "kafka stale pid file removed node=%d pid=%s state=%s",
                node.node_id,
                check.pid,
                check.state.value,
            )
            node.pid_path.unlink(missing_ok=True)
    missing = [n for n in layout.nodes if checks[n.node_id].state is not PidState.RUNNING]
    orphans = find_brokers([n.config_path for n in missing]) if missing else {}
    for node in missing:
        pid = orphans.get(node.config_path)
        if pid is not None:
            progress(f"node {node.node_id}: broker pid {pid} runs without a pid file; adopting it")
            log.info("kafka orphan broker adopted node=%d pid=%d", node.node_id, pid)
            node.pid_path.write_text(f"{pid}\n", encoding="utf-8")
    return pid_checks(layout)


def check_ports(nodes: Sequence[NodeSpec], progress: Progress, wait: float = PORT_WAIT) -> None:
    """Fail, naming the port and its holder, when a node to start cannot bind its ports.

    Ports 29092/39092 lie in Linux's range for outgoing connections (32768-60999), so a
    client's connection, or its 60 s TIME_WAIT, can hold one for a while: that is waited
    out (up to ``wait`` seconds, said once, and tried again at least once even when looking
    up the holder took longer on a busy machine); a listening program is reported at once.
    """
    deadline = time.monotonic() + wait
    for node in nodes:
        for port, role in ((node.broker_port, "broker"), (node.controller_port, "controller")):
            told = False
            while port_in_use(port):
                users = port_users(port)
                what = ", ".join(u.describe() for u in users) or "a socket this user cannot see"
                if any(u.listening for u in users) or (told and time.monotonic() >= deadline):
                    raise KafkaStackError(_port_message(node, port, role, what, users))
                if not told:
                    progress(f"port {port} is held by {what}; waiting up to {wait:.0f} s")
                    told = True
                time.sleep(1.0)


def _port_message(node: NodeSpec, port: int, role: str, what: str, users: list[PortUser]) -> str:
    head = f"port {port} (node {node.node_id} {role}) is already in use by {what}. "
    if any(u.listening for u in users):
        return head + (
            "If that is a Deskstream broker, stop it with `deskstream kafka down` (with the "
            "same DESKSTREAM_* settings it was started with); otherwise stop that program or "
            "pick free ports with DESKSTREAM_KAFKA_PORT_BASE=<port>"
        )
    return head + (
        "The kernel lends ports 32768-60999 to outgoing connections; try again shortly, "
        "keep them for Kafka with `sysctl -w net.ipv4.ip_local_reserved_ports="
        f"{port}-{port + 1}` (root), or pick DESKSTREAM_KAFKA_PORT_BASE so that every node's "
        "ports stay below 32768"
    )


def port_drift(layout: ClusterLayout) -> list[str]:
    """Nodes whose written config listens elsewhere than today's settings say (port base
    changed while the cluster ran): "node 1 listens on 127.0.0.1:19092, settings say ...".
    """
    drift = []
    for node in layout.nodes:
        try:
            listeners = read_properties(node.config_path).get("listeners", "")
        except FileNotFoundError:
            continue
        expected = render_server_properties(layout, node)
        if f"listeners={listeners}\n" not in expected:
            drift.append(
                f"node {node.node_id} listens on {listeners}, settings say {node.bootstrap}"
            )
    return drift


def render_configs(layout: ClusterLayout, nodes: Sequence[NodeSpec]) -> None:
    for node in nodes:
        node.logs_dir.mkdir(parents=True, exist_ok=True)
        node.config_path.write_text(render_server_properties(layout, node), encoding="utf-8")
        node.log_config_path.write_text(render_log_config(layout, node), encoding="utf-8")


def read_version(layout: ClusterLayout) -> str | None:
    """The Kafka version the cluster's nodes were last started with."""
    try:
        return layout.version_path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def launch(layout: ClusterLayout, node: NodeSpec, libs: Path, heap: str) -> int:
    """Start one broker detached and record its pid."""
    node.logs_dir.mkdir(parents=True, exist_ok=True)
    argv = [*java_command(layout, node, libs, heap), str(node.config_path)]
    pid = spawn_detached(argv, node.stdout_path, cwd=node.node_dir)
    node.pid_path.write_text(f"{pid}\n", encoding="utf-8")
    log.info(
        "kafka node started node=%d pid=%d broker_port=%d controller_port=%d",
        node.node_id,
        pid,
        node.broker_port,
        node.controller_port,
    )
    return pid


def _failure_log(node: NodeSpec) -> str:
    lines = tail(node.stdout_path, 15) + tail(node.server_log_path, 15)
    return "\n  ".join(lines) if lines else "(the broker wrote no log)"


def _serving(node: NodeSpec) -> bool:
    # Ask the node itself: the rest of the cluster keeps listing a killed broker until its
    # session times out, so only the node's own answer proves a restart went through.
    view = describe_cluster(node.bootstrap, timeout=5.0)
    return view is not None and node.node_id in view.brokers


def wait_serving(
    layout: ClusterLayout,
    pids: dict[int, int],
    timeout: float,
    progress: Progress,
) -> ClusterView:
    """Until every node in ``pids`` answers and all of them are registered in the cluster.

    Fails fast, with the last lines of its logs, when one of those processes exits.
    """
    deadline = time.monotonic() + timeout
    ready: set[int] = set()
    while True:
        for node_id, pid in pids.items():
            if not is_alive(pid):
                node = layout.node(node_id)
                node.pid_path.unlink(missing_ok=True)
                raise KafkaStackError(
                    f"Kafka node {node_id} (pid {pid}) exited during start-up; last lines of "
                    f"{node.stdout_path} and {node.server_log_path}:\n  {_failure_log(node)}\n"
                    "fix the cause shown there, then `deskstream kafka up` again"
                )
        for node_id in sorted(set(pids) - ready):
            if _serving(layout.node(node_id)):
                ready.add(node_id)
                progress(f"node {node_id} is serving on {layout.node(node_id).bootstrap}")
        if ready == set(pids):
            view = describe_cluster(layout.bootstrap_servers, timeout=5.0)
            if view is not None and set(pids) <= set(view.brokers):
                return view
        if time.monotonic() >= deadline:
            waiting = sorted(set(pids) - ready)
            logs = "\n".join(f"  {layout.node(n).server_log_path}" for n in waiting)
            raise KafkaStackError(
                f"Kafka node(s) {waiting} did not answer within {timeout:.0f} s although still "
                f"running; read\n{logs}\nthen run `deskstream kafka down` and `up` again"
            )
        time.sleep(0.5)
