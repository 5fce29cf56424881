"""The local Kafka stack's process handling, no JVM: pid files (stale, foreign, ours),
stop with SIGTERM then SIGKILL, purge, kill, adoption of a broker without pid file, and the
port checks (taken by a listener, by an outgoing connection, by the other cluster size, or
a running cluster started with another port base).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.kafka_local import cluster_layout, cluster_status, kill_node, start_cluster, stop_cluster
from app.kafka_local.layout import NodeSpec, render_server_properties
from app.kafka_local.nodes import check_ports
from app.kafka_local.procs import PidState, check_pid_file, is_alive, port_in_use
from schemas.errors import KafkaStackError
from tests.app.kafka_local_support import (
    FakeBroker,
    fake_format,
    local_settings,
    write_pid,
)


@pytest.fixture
def fakes() -> Iterator[list[FakeBroker]]:
    started: list[FakeBroker] = []
    yield started
    for fake in started:
        fake.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


# -- pid files -----------------------------------------------------------------------------


def test_pid_file_states(
    tmp_path: Path, fakes: list[FakeBroker], sleeper: subprocess.Popen[bytes]
) -> None:
    node = cluster_layout(local_settings(tmp_path)).nodes[0]
    assert check_pid_file(node.pid_path, node.config_path).state is PidState.STOPPED

    gone = subprocess.Popen(["true"])
    gone.wait()
    write_pid(node, gone.pid)
    assert check_pid_file(node.pid_path, node.config_path).state is PidState.STALE

    write_pid(node, "not-a-pid")
    assert check_pid_file(node.pid_path, node.config_path).state is PidState.STALE

    write_pid(node, sleeper.pid)
    foreign = check_pid_file(node.pid_path, node.config_path)
    assert foreign.state is PidState.FOREIGN
    assert "sleep 120" in foreign.detail

    fakes.append(FakeBroker(node))
    write_pid(node, fakes[0].pid)
    assert check_pid_file(node.pid_path, node.config_path).state is PidState.RUNNING
    # The same broker is not "ours" for another node's config.
    other = cluster_layout(local_settings(tmp_path), 3).nodes[1]
    assert check_pid_file(node.pid_path, other.config_path).state is PidState.FOREIGN


def test_status_reports_a_stale_pid_file_and_down_cleans_it(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    node = cluster_layout(settings).nodes[0]
    gone = subprocess.Popen(["true"])
    gone.wait()
    write_pid(node, gone.pid)

    status = cluster_status(settings)
    assert status.nodes[0].state == "stale"
    assert any("stale pid files" in note for note in status.notes)

    report = stop_cluster(settings)
    assert any("removing stale pid file" in line and "is gone" in line for line in report)
    assert not node.pid_path.exists()


def test_down_never_signals_a_pid_that_is_another_program_now(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    settings = local_settings(tmp_path)
    node = cluster_layout(settings).nodes[0]
    write_pid(node, sleeper.pid)
    report = stop_cluster(settings, purge=True)
    assert sleeper.poll() is None, "the unrelated process was signalled"
    assert any("another program" in line for line in report)
    assert not node.pid_path.exists()


def test_down_stops_brokers_and_purge_deletes_the_data(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    settings = local_settings(tmp_path)
    layout = cluster_layout(settings, 3)
    for node in layout.nodes:
        fake_format(node, "abc")
        fakes.append(FakeBroker(node))
        write_pid(node, fakes[-1].pid)

    report = stop_cluster(settings, purge=True)

    assert [f.proc.wait(timeout=10) for f in fakes] == [-15, -15, -15]  # SIGTERM each
    assert sum("stopped node" in line for line in report) == 3
    assert not layout.cluster_dir.exists()
    assert stop_cluster(settings) == ["no local Kafka cluster is running"]


def test_down_kills_a_broker_that_ignores_sigterm(tmp_path: Path, fakes: list[FakeBroker]) -> None:
    settings = local_settings(tmp_path)
    node = cluster_layout(settings).nodes[0]
    fakes.append(FakeBroker(node, ignore_sigterm=True))
    write_pid(node, fakes[0].pid)
    report = stop_cluster(settings, timeout=1.0)
    assert fakes[0].proc.wait(timeout=10) == -9
    assert any("SIGKILL after 1 s" in line for line in report)


def test_a_broker_running_without_its_pid_file_is_adopted_not_doubled(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    settings = local_settings(tmp_path)
    node = cluster_layout(settings).nodes[0]
    node.node_dir.mkdir(parents=True)
    fakes.append(FakeBroker(node))
    report = stop_cluster(settings)
    assert any("adopting it" in line for line in report)
    assert fakes[0].proc.wait(timeout=10) == -15


def test_kill_node_sends_sigkill_and_forgets_the_pid(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    settings = local_settings(tmp_path, kafka_brokers=3)
    node = cluster_layout(settings).nodes[1]
    fakes.append(FakeBroker(node, ignore_sigterm=True))
    write_pid(node, fakes[0].pid)
    assert kill_node(settings, 2) == fakes[0].pid
    assert fakes[0].proc.wait(timeout=10) == -9
    assert not node.pid_path.exists()
    with pytest.raises(KafkaStackError, match="node 2 of the 3-node cluster is not running"):
        kill_node(settings, 2)


# -- ports ---------------------------------------------------------------------------------


def test_a_taken_port_is_named_with_its_holder(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        if port > 65000:
            pytest.skip(f"ephemeral port {port} is above the settings' port base limit")
        settings = local_settings(tmp_path, kafka_port_base=port)
        with pytest.raises(KafkaStackError) as caught:
            start_cluster(settings, 1)
    message = str(caught.value)
    assert f"port {port} (node 1 broker) is already in use by pid {os.getpid()}" in message
    assert "DESKSTREAM_KAFKA_PORT_BASE" in message


def test_up_refuses_a_size_whose_ports_the_other_running_cluster_holds(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    settings = local_settings(tmp_path, kafka_port_base=21000)  # refused before any port is bound
    single = cluster_layout(settings, 1)
    node = single.nodes[0]
    node.node_dir.mkdir(parents=True)
    node.config_path.write_text(render_server_properties(single, node))
    fakes.append(FakeBroker(node))
    write_pid(node, fakes[0].pid)
    with pytest.raises(
        KafkaStackError, match=r"the 1-node cluster .* is running on ports \[21000, 21001\]"
    ):
        start_cluster(settings, 3)
    assert is_alive(fakes[0].pid)


def test_up_explains_a_running_cluster_started_with_another_port_base(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    started = cluster_layout(local_settings(tmp_path, kafka_port_base=21000), 1)
    node = started.nodes[0]
    node.node_dir.mkdir(parents=True)
    node.config_path.write_text(render_server_properties(started, node))
    fakes.append(FakeBroker(node))
    write_pid(node, fakes[0].pid)
    moved = local_settings(tmp_path, kafka_port_base=21100)

    with pytest.raises(KafkaStackError, match="running with other ports") as caught:
        start_cluster(moved, 1, timeout=5.0)

    assert "listens on PLAINTEXT://127.0.0.1:21000" in str(caught.value)
    assert any("settings say 127.0.0.1:21100" in note for note in cluster_status(moved).notes)


@pytest.fixture
def outgoing_connection() -> Iterator[tuple[int, socket.socket, socket.socket]]:
    """A live loopback connection: (the client's local port, client, server side)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.socket()
        client.bind(("127.0.0.1", 0))
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        yield int(client.getsockname()[1]), client, accepted
        accepted.close()
        client.close()


def test_a_port_held_by_an_outgoing_connection_is_explained(
    outgoing_connection: tuple[int, socket.socket, socket.socket],
) -> None:
    port, _, _ = outgoing_connection
    node = NodeSpec(1, port, port + 1, Path("/nonexistent"))
    lines: list[str] = []
    with pytest.raises(KafkaStackError) as caught:
        check_ports([node], lines.append, wait=1.0)
    message = str(caught.value)
    assert f"an outgoing connection of pid {os.getpid()}" in message
    assert "(TCP ESTABLISHED)" in message
    assert f"ip_local_reserved_ports={port}-{port + 1}" in message
    assert len(lines) == 1
    assert lines[0].startswith(f"port {port} is held by an outgoing connection")
    assert lines[0].endswith("waiting up to 1 s")


def test_a_port_freed_while_waiting_lets_the_start_go_on(
    outgoing_connection: tuple[int, socket.socket, socket.socket],
) -> None:
    port, client, accepted = outgoing_connection
    node = NodeSpec(1, port, port + 1, Path("/nonexistent"))

    def close_soon() -> None:
        time.sleep(1.0)
        accepted.close()  # the server side closes first: no TIME_WAIT on the client's port
        client.close()

    closer = threading.Thread(target=close_soon)
    closer.start()
    try:
        check_ports([node], lambda _: None, wait=30.0)
    finally:
        closer.join()
    assert not port_in_use(port)
