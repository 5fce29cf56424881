"""The local Kafka stack's pure logic, no broker and no JVM: cluster layout and ports,
rendered configs for 1 and 3 nodes and Kafka 3.x/4.x, storage consistency (half-formatted
folders), the ``KAFKA_BOOTSTRAP_SERVERS`` override and the jar cache.

Process handling (pid files, stop, kill, ports) is in ``test_kafka_local_processes.py``.
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.kafka_local import (
    cluster_layout,
    cluster_status,
    ensure_jars,
    kill_node,
    libs_dir,
    start_cluster,
    stop_cluster,
)
from app.kafka_local.cli import kafka
from app.kafka_local.layout import (
    java_command,
    new_cluster_id,
    render_log_config,
    render_server_properties,
)
from app.kafka_local.procs import is_alive
from app.kafka_local.storage import check_readable, check_storage
from app.settings import get_settings, load_settings
from schemas.errors import KafkaStackError
from tests.app.kafka_local_support import (
    FakeBroker,
    fake_format,
    free_port_base,
    local_settings,
    parse_properties,
    write_pid,
)


@pytest.fixture
def fakes() -> Iterator[list[FakeBroker]]:
    started: list[FakeBroker] = []
    yield started
    for fake in started:
        fake.close()


# -- layout --------------------------------------------------------------------------------


def test_three_node_ports_step_by_ten_thousand_from_the_base(tmp_path: Path) -> None:
    layout = cluster_layout(local_settings(tmp_path, kafka_port_base=19092), 3)
    ports = [(n.broker_port, n.controller_port) for n in layout.nodes]
    assert ports == [(19092, 19093), (19102, 19103), (19112, 19113)]
    assert layout.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    assert layout.quorum_voters == "1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113"


def test_state_lives_under_the_state_dir_per_cluster_size(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    one, three = cluster_layout(settings, 1), cluster_layout(settings, 3)
    assert one.nodes[0].data_dir == settings.kafka_dir / "1-node" / "node-1" / "data"
    assert three.nodes[2].logs_dir == settings.kafka_dir / "3-node" / "node-3" / "logs"
    assert one.cluster_dir != three.cluster_dir


def test_relative_state_dir_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    layout = cluster_layout(load_settings(state_dir=Path(".ds"), kafka_bootstrap_servers=None))
    assert layout.nodes[0].config_path == tmp_path / ".ds" / "kafka" / "1-node" / "node-1" / (
        "server.properties"
    )


def test_size_defaults_to_settings_and_only_1_or_3_are_allowed(tmp_path: Path) -> None:
    assert cluster_layout(local_settings(tmp_path, kafka_brokers=3)).size == 3
    with pytest.raises(KafkaStackError, match="1 or 3"):
        cluster_layout(local_settings(tmp_path), 2)


def test_port_base_without_room_for_three_nodes_is_explained(tmp_path: Path) -> None:
    with pytest.raises(KafkaStackError, match=r"port base 65520 .* at most 65514"):
        cluster_layout(local_settings(tmp_path, kafka_port_base=65520), 3)
    assert cluster_layout(local_settings(tmp_path, kafka_port_base=65520), 1).size == 1


def test_malformed_kafka_version_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KafkaStackError, match="DESKSTREAM_KAFKA_VERSION"):
        cluster_layout(local_settings(tmp_path, kafka_version="latest"))


# -- rendered configuration ----------------------------------------------------------------


def test_single_node_properties(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, kafka_port_base=19092, kafka_version="3.9.2")
    layout = cluster_layout(settings, 1)
    props = parse_properties(render_server_properties(layout, layout.nodes[0]))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["log.dirs"] == str(layout.nodes[0].data_dir)
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert props[key] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert not any(key.startswith("share.") for key in props)  # 3.9 has no share groups


def test_three_node_properties_replicate_three_ways_with_two_in_sync(tmp_path: Path) -> None:
    layout = cluster_layout(local_settings(tmp_path, kafka_port_base=19092), 3)
    rendered = [parse_properties(render_server_properties(layout, node)) for node in layout.nodes]
    assert [p["node.id"] for p in rendered] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in rendered} == {layout.quorum_voters}
    assert len({p["log.dirs"] for p in rendered}) == 3
    assert rendered[1]["listeners"] == "PLAINTEXT://127.0.0.1:19102,CONTROLLER://127.0.0.1:19103"
    for props in rendered:
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"


@pytest.mark.parametrize(
    ("version", "share"), [("3.9.2", False), ("4.0.0", False), ("4.1.1", True), ("4.2.0", True)]
)
def test_share_coordinator_settings_from_kafka_4_1(
    tmp_path: Path, version: str, share: bool
) -> None:
    layout = cluster_layout(local_settings(tmp_path, kafka_version=version), 3)
    props = parse_properties(render_server_properties(layout, layout.nodes[0]))
    if share:
        assert props["share.coordinator.state.topic.replication.factor"] == "3"
        assert props["share.coordinator.state.topic.min.isr"] == "2"
    else:
        assert "share.coordinator.state.topic.replication.factor" not in props


def test_logging_backend_follows_the_kafka_generation(tmp_path: Path) -> None:
    old = cluster_layout(local_settings(tmp_path, kafka_version="3.9.2"))
    new = cluster_layout(local_settings(tmp_path, kafka_version="4.1.1"))
    libs = tmp_path / "libs"
    old_cmd = java_command(old, old.nodes[0], libs, "512m")
    new_cmd = java_command(new, new.nodes[0], libs, "512m")
    assert f"-Dlog4j.configuration=file:{old.nodes[0].log_config_path}" in old_cmd
    assert f"-Dlog4j2.configurationFile=file:{new.nodes[0].log_config_path}" in new_cmd
    assert f"-Dkafka.logs.dir={old.nodes[0].logs_dir}" in old_cmd
    assert old_cmd[:2] == ["java", "-Xmx512m"]
    assert old_cmd[-3:] == ["-cp", f"{libs}/*", "kafka.Kafka"]
    assert "log4j.appender.file.File=" in render_log_config(old, old.nodes[0])
    assert "appender.file.type = RollingFile" in render_log_config(new, new.nodes[0])


def test_cluster_ids_are_kraft_shaped_and_unique() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka-storage would read ``--cluster-id -abc`` as an option: a fresh draw instead."""
    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\x00" * 15), uuid.UUID(int=7)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(b"\xf8" + b"\x00" * 15).startswith(b"-")
    assert new_cluster_id() == base64.urlsafe_b64encode(uuid.UUID(int=7).bytes).decode()[:22]


# -- storage consistency -------------------------------------------------------------------


def test_fresh_and_consistent_storage(tmp_path: Path) -> None:
    layout = cluster_layout(local_settings(tmp_path), 3)
    assert check_storage(layout) is None
    for node in layout.nodes:
        fake_format(node, "cid")
    assert check_storage(layout) == "cid"
    assert layout.cluster_id_path.read_text().strip() == "cid"  # lost bookkeeping restored


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("unformatted", r"node\(s\) 3 are not formatted"),
        ("other_cluster", "node 2 belongs to cluster other, not cid"),
        ("data_without_meta", "node 3 has data but no meta.properties"),
        ("wrong_node_id", "node 2 was formatted as node.id=7"),
    ],
)
def test_half_formatted_storage_is_explained_with_the_fix(
    tmp_path: Path, damage: str, message: str
) -> None:
    layout = cluster_layout(local_settings(tmp_path), 3)
    layout.cluster_dir.mkdir(parents=True)
    layout.cluster_id_path.write_text("cid\n")
    for node in layout.nodes:
        fake_format(node, "cid")
    if damage == "unformatted":
        (layout.nodes[2].data_dir / "meta.properties").unlink()
        layout.nodes[2].data_dir.rmdir()
    elif damage == "other_cluster":
        fake_format(layout.nodes[1], "other")
    elif damage == "data_without_meta":
        (layout.nodes[2].data_dir / "meta.properties").unlink()
        (layout.nodes[2].data_dir / "events-0").mkdir()
    else:
        fake_format(layout.nodes[1], "cid", node_id=7)
    with pytest.raises(KafkaStackError, match=message) as caught:
        check_storage(layout)
    assert "deskstream kafka down --purge" in str(caught.value)


def test_up_refuses_half_formatted_storage_before_starting_anything(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, kafka_port_base=free_port_base())
    layout = cluster_layout(settings, 1)
    layout.cluster_dir.mkdir(parents=True)
    layout.cluster_id_path.write_text("cid\n")
    fake_format(layout.nodes[0], "someone-else")
    with pytest.raises(KafkaStackError, match=r"half formatted.*down --purge"):
        start_cluster(settings, 1)
    assert not layout.nodes[0].pid_path.exists()


@pytest.mark.parametrize(
    ("formatted", "wanted", "refused"),
    [
        ("4.4.0", "3.9.2", True),
        ("4.4.0", "4.3.1", True),
        ("3.9.2", "4.4.0", False),
        ("4.4.0", "4.4.1", False),
        (None, "3.9.2", False),
    ],
)
def test_up_refuses_a_kafka_older_than_the_one_that_formatted_the_storage(
    tmp_path: Path, formatted: str | None, wanted: str, refused: bool
) -> None:
    settings = local_settings(tmp_path, kafka_port_base=free_port_base(), kafka_version=wanted)
    layout = cluster_layout(settings, 1)
    layout.cluster_dir.mkdir(parents=True)
    layout.cluster_id_path.write_text("cid\n")
    fake_format(layout.nodes[0], "cid")
    if formatted is not None:
        layout.formatted_version_path.write_text(f"{formatted}\n")
    if refused:
        with pytest.raises(KafkaStackError) as caught:
            start_cluster(settings, 1)
        message = str(caught.value)
        assert f"formatted by Kafka {formatted}" in message
        assert f"DESKSTREAM_KAFKA_VERSION={formatted}" in message
        assert "down --purge" in message
        assert not layout.nodes[0].pid_path.exists()
    else:
        check_readable(layout)  # an upgrade, or storage from before the version was kept


# -- KAFKA_BOOTSTRAP_SERVERS overrides the local stack -------------------------------------


def test_external_cluster_leaves_the_local_stack_alone(
    tmp_path: Path, fakes: list[FakeBroker]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    settings = local_settings(tmp_path, kafka_bootstrap_servers=closed)
    node = cluster_layout(settings).nodes[0]
    fakes.append(FakeBroker(node))
    write_pid(node, fakes[0].pid)

    assert stop_cluster(settings, purge=True) == [
        f"KAFKA_BOOTSTRAP_SERVERS={closed} is an external cluster: nothing local to stop or purge"
    ]
    assert is_alive(fakes[0].pid)
    assert node.pid_path.exists()
    status = cluster_status(settings, timeout=1.0)
    assert (status.local, status.bootstrap_servers, status.registered) == (False, closed, None)
    with pytest.raises(KafkaStackError, match=f"KAFKA_BOOTSTRAP_SERVERS={closed} does not answer"):
        start_cluster(settings)
    with pytest.raises(KafkaStackError, match="local stack only"):
        kill_node(settings, 1)


def test_cli_down_with_an_external_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(kafka, ["down"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "nothing local to stop" in result.output


# -- jar cache -----------------------------------------------------------------------------


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``mvn`` on PATH that counts its runs and copies one fake broker jar."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mvn"
    script.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{tmp_path}/mvn-runs"\n'
        f'[ -f "{tmp_path}/mvn-fails" ] && {{ echo "[ERROR] no such artifact"; exit 1; }}\n'
        'for arg; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done\n'
        'mkdir -p "$out" && touch "$out/kafka_2.13-9.9.9.jar"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "mvn-runs"


def test_jars_are_fetched_once_and_an_interrupted_fetch_is_redone(
    tmp_path: Path, fake_mvn: Path
) -> None:
    settings = local_settings(tmp_path, kafka_version="9.9.9")
    libs = libs_dir(settings)
    libs.mkdir(parents=True)
    (libs / "half-downloaded.jar").write_text("")  # no marker: an interrupted fetch

    assert ensure_jars(settings) == libs
    assert not (libs / "half-downloaded.jar").exists()
    assert (libs / "kafka_2.13-9.9.9.jar").exists()
    ensure_jars(settings)
    assert fake_mvn.read_text().count("run") == 1


def test_a_failed_fetch_leaves_no_marker_and_says_why(tmp_path: Path, fake_mvn: Path) -> None:
    settings = local_settings(tmp_path, kafka_version="9.9.9")
    (tmp_path / "mvn-fails").touch()
    with pytest.raises(
        KafkaStackError, match=r"(?s)could not fetch Kafka 9\.9\.9.*no such artifact"
    ):
        ensure_jars(settings)
    (tmp_path / "mvn-fails").unlink()
    ensure_jars(settings)
    assert fake_mvn.read_text().count("run") == 2
