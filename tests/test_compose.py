"""compose.yaml cannot run here (no Docker daemon), so its structure is checked instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).parents[1] / "compose.yaml"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_a_three_broker_kraft_cluster_with_one_quorum() -> None:
    services = _compose()["services"]
    brokers = {name: s for name, s in services.items() if name.startswith("kafka-")}
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    ids = sorted(int(s["environment"]["KAFKA_NODE_ID"]) for s in brokers.values())
    assert ids == [1, 2, 3]
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in brokers.values()}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for broker in brokers.values():
        env = broker["environment"]
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `topics create`
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"


def test_every_reference_points_at_something_defined() -> None:
    compose = _compose()
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name} uses unknown secret {secret}"
    workers = [s for n, s in services.items() if n.startswith("worker-")]
    assert len(workers) == 2  # one consumer group, two workers
    for worker in workers:
        env = worker["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
        assert "SECRET" not in "".join(k for k in env if not k.endswith("_FILE"))  # files only
        assert env["DESKSTREAM_SCHEMA_REGISTRY_URL"] == "http://registry:8080/apis/ccompat/v7"
        assert "registry" in worker["depends_on"]


def test_a_registry_stores_its_schemas_in_the_cluster_and_is_reached_on_loopback() -> None:
    registry = _compose()["services"]["registry"]
    assert registry["image"].startswith("apicurio/apicurio-registry:")
    env = registry["environment"]
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    # Published to the host's loopback only; the management port not at all.
    assert registry["ports"] == ["127.0.0.1:8081:8080"]


def test_prometheus_scrapes_both_workers_and_grafana_is_provisioned() -> None:
    compose = _compose()
    services = compose["services"]
    root = COMPOSE.parent
    prometheus, grafana = services["prometheus"], services["grafana"]
    mounts = {v.split(":")[1]: root / v.split(":")[0] for v in prometheus["volumes"]}
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    workers = {
        f"{name}:{s['environment']['DESKSTREAM_WEB_PORT']}"
        for name, s in services.items()
        if name.startswith("worker-")
    }
    assert set(job["static_configs"][0]["targets"]) == workers  # every worker, nothing else
    assert set(prometheus["depends_on"]) == {"worker-1", "worker-2"}
    mounted = {v.split(":")[1]: root / v.split(":")[0] for v in grafana["volumes"]}
    assert (mounted["/etc/grafana/provisioning"] / "datasources" / "prometheus.yaml").is_file()
    assert (mounted["/etc/grafana/dashboards"] / "deskstream.json").is_file()
    datasource = yaml.safe_load(
        (mounted["/etc/grafana/provisioning"] / "datasources" / "prometheus.yaml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"  # the compose service, its port
    env = grafana["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env  # a secret file, never a value here
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].endswith("grafana_admin_password")
    # Reached from this host only: neither UI is published on other interfaces.
    for service in (prometheus, grafana):
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
