"""The Grafana dashboard (``ops/grafana/dashboards/deskstream.json``) against the worker.

Every metric a panel queries must be on the registry of a worker built with every platform
and a sync stage (what ``/metrics`` serves); tests/e2e/test_three_way.py checks the same
against a running worker's ``/metrics``, labels included.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from app.faust_app import build_app
from app.settings import load_settings
from tests.dashboard_queries import (
    Exported,
    dashboard_queries,
    exported,
    load_dashboard,
    metric_names,
    problems,
)

REPO = Path(__file__).parents[1]
PROVISIONING = REPO / "ops" / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def worker_metrics(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    settings = load_settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # built, never started: nothing connects
        state_dir=tmp_path_factory.mktemp("dashboard"),
        sync_config=REPO / "config" / "intercom-zendesk-salesforce.example.yaml",
        connectors={
            "intercom": {"platform": "intercom"},
            "zendesk": {"platform": "zendesk"},
            "salesforce": {
                "platform": "salesforce",
                "client_id": "dashboard-test",
                "username": "integration@example.com",
                "private_key_file": "/nonexistent/key.pem",
            },
        },
    )
    bundle = build_app(settings)
    return exported(generate_latest(bundle.metrics.registry).decode())


def test_every_metric_the_dashboard_queries_is_on_the_worker_registry(
    worker_metrics: Exported,
) -> None:
    queries = dashboard_queries(load_dashboard())
    assert len(queries) >= 20  # the panels were found at all
    assert problems(queries, worker_metrics) == []


def test_a_panel_naming_a_metric_nobody_exports_is_reported(worker_metrics: Exported) -> None:
    dashboard = copy.deepcopy(load_dashboard())
    target = dashboard["panels"][1]["targets"][0]
    target["expr"] = target["expr"].replace(
        "deskstream_webhooks_total", "deskstream_webhooks_accepted_total"
    )
    found = problems(dashboard_queries(dashboard), worker_metrics)
    assert len(found) == 1
    assert "deskstream_webhooks_accepted_total is not exported" in found[0]


def test_promql_names_are_read_from_what_dashboards_write() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, platform) (rate(a_seconds_bucket{platform=~"z.*", '
        'outcome!="x_total"}[$__rate_interval])))'
        " / on (platform) group_left sum without (instance) (b_gauge offset 5m) > bool 1e3"
        " or time() - max(c_timestamp_seconds) and d"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_gauge", "c_timestamp_seconds", "d"}


def test_labels_a_query_needs_are_checked_where_samples_show_them() -> None:
    exposition = (
        "# TYPE x counter\n"
        'x_total{platform="zendesk",outcome="written"} 1\n'
        "# TYPE y gauge\n"
        'y{agent="sync"} 3\n'
    )
    worker = exported(exposition)
    queries = dashboard_queries(
        {
            "panels": [
                {"id": 1, "targets": [{"refId": "A", "expr": "sum by (connector) (y)"}]},
                {"id": 2, "targets": [{"refId": "A", "expr": 'rate(x_total{scope="a"}[1m])'}]},
                {"id": 3, "targets": [{"refId": "A", "expr": "sum by (agent, instance) (y)"}]},
            ]
        }
    )
    found = problems(queries, worker)
    assert len(found) == 2
    assert "y has no label connector" in found[0]
    assert "x_total has no label scope" in found[1]


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_every_panel_reads_the_provisioned_datasource_and_fits_the_grid() -> None:
    dashboard = load_dashboard()
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    uid = datasources["datasources"][0]["uid"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["description"], f"{panel['title']} says what it shows"
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "deskstream.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_the_dashboard_covers_what_operators_watch() -> None:
    """Issue 12's list: each of these must be charted by some panel."""
    used = set().union(*(q.names for q in dashboard_queries(load_dashboard())))
    wanted = {
        "deskstream_webhooks_total",  # ingest rate, refusals by reason
        "deskstream_consumer_lag_records",
        "deskstream_end_to_end_seconds_bucket",
        "deskstream_sink_writes_total",  # writes by outcome and platform
        "deskstream_rate_budget_calls_total",
        "deskstream_rate_budget_per_second",
        "deskstream_rate_limited_total",  # 429s
        "deskstream_dlq_depth",
        "deskstream_sync_decisions_total",  # echoes suppressed
        "deskstream_salesforce_token_failures_total",
        "deskstream_source_running",  # lease holder
        "deskstream_source_position_timestamp_seconds",  # CDC position age
        "deskstream_rewinds_total",
    }
    assert wanted <= used, sorted(wanted - used)
