"""``deskstream kafka ...``: fetch the jars, bring the local cluster up or down, show it.

Progress goes to stderr and the bootstrap servers to stdout, so
``export KAFKA_BOOTSTRAP_SERVERS=$(deskstream kafka up)`` works in scripts.
"""

from __future__ import annotations

import logging

import click

from app.kafka_local.jars import ensure_jars
from app.kafka_local.registry import (
    ensure_registry_dist,
    registry_status,
    start_registry,
)
from app.kafka_local.stack import ClusterInfo, cluster_status, start_cluster, stop_cluster
from app.settings import Settings, get_settings

__all__ = ["kafka"]


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _quiet_client_logs() -> None:
    # aiokafka logs every refused connection at ERROR while a broker is still starting;
    # the probe retries on its own, so those lines are noise for a person at a terminal.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _describe(info: ClusterInfo) -> None:
    if not info.local:
        state = (
            f"answers, brokers {sorted(info.registered)}"
            if info.registered is not None
            else "does NOT answer"
        )
        _progress(f"external cluster {info.bootstrap_servers}: {state}")
    else:
        registered = "not answering" if info.registered is None else sorted(info.registered)
        _progress(
            f"{info.size}-node Kafka {info.kafka_version} in {info.cluster_dir} "
            f"(registered brokers: {registered})"
        )
        for node in info.nodes:
            pid = f"pid {node.pid}" if node.pid else "no pid"
            detail = f" - {node.detail}" if node.detail else ""
            _progress(
                f"  node {node.node_id}: {node.state:<8} {pid:<11} "
                f"broker 127.0.0.1:{node.broker_port} controller :{node.controller_port} "
                f"data {node.data_dir}{detail}"
            )
    for note in info.notes:
        _progress(f"note: {note}")


@click.group()
def kafka() -> None:
    """The local Kafka cluster (real brokers from Maven Central jars)."""
    _quiet_client_logs()


_REGISTRY = click.option(
    "--registry/--no-registry",
    default=True,
    help="Also the schema registry (Apicurio Registry, needs Java 21+). Default: yes.",
)


@kafka.command()
@_REGISTRY
def fetch(registry: bool) -> None:
    """Fetch the Kafka jars for DESKSTREAM_KAFKA_VERSION and Apicurio Registry with Maven
    (once per version)."""
    settings = get_settings()
    if settings.kafka_bootstrap_servers:
        _progress("note: KAFKA_BOOTSTRAP_SERVERS is set; fetching the local jars anyway")
    libs = ensure_jars(settings, progress=_progress)
    click.echo(str(libs))
    if registry:
        click.echo(str(ensure_registry_dist(settings, progress=_progress)))


@kafka.command()
@click.option("--brokers", type=click.Choice(["1", "3"]), default=None, help="Cluster size.")
@_REGISTRY
def up(brokers: str | None, registry: bool) -> None:
    """Start the cluster and the schema registry (or report the running ones) and print the
    bootstrap servers."""
    settings: Settings = get_settings()
    size = int(brokers) if brokers else None
    info = start_cluster(settings, size, progress=_progress)
    if info.already_running:
        _progress("already running; nothing started")
    _describe(info)
    if registry and info.local:
        found = start_registry(settings, info.bootstrap_servers, brokers=size, progress=_progress)
        _progress(f"schema registry: {found.url} (pid {found.pid}); workers of this stack use it")
    elif registry:
        _progress(
            "note: no local schema registry with an external cluster; point "
            "DESKSTREAM_SCHEMA_REGISTRY_URL at that cluster's registry"
        )
    click.echo(info.bootstrap_servers)


@kafka.command()
@click.option("--purge", is_flag=True, help="Also delete the cluster's data and logs.")
def down(purge: bool) -> None:
    """Stop the local cluster (SIGTERM, then SIGKILL after 30 s)."""
    for line in stop_cluster(get_settings(), purge=purge, progress=_progress):
        click.echo(line)


@kafka.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the nodes, their pids and ports; exit status 1 when the cluster does not answer."""
    settings = get_settings()
    info = cluster_status(settings)
    _describe(info)
    if info.local:
        found = registry_status(settings, brokers=info.size)
        answers = "answering" if found.answering else "not answering"
        _progress(f"schema registry: {found.state}, {answers}, {found.url}")
    click.echo(info.bootstrap_servers)
    if info.registered is None:
        ctx.exit(1)
