"""The local stack's schema registry: Apicurio Registry from Maven Central, storage in Kafka.

``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` is a Quarkus "fast-jar"
application (``quarkus-run.jar`` with ``lib/``, ``app/``, ``quarkus/``); Maven unpacks it once
into ``<cache_dir>/apicurio-registry-<version>/`` (a marker file marks a complete fetch). It
needs Java 21+ (``app.kafka_local.java`` finds one; the brokers keep the ``java`` on PATH).

One registry per local cluster, its files in ``<cluster_dir>/registry/`` (``registry.pid``,
``registry.out``), so ``down --purge`` deletes it with the Kafka data that holds its state:
storage ``kafkasql`` keeps every schema in the stack's own Kafka (topic
``_deskstream-registry-journal``), so schemas and their ids survive a restart. Its HTTP port is
the Kafka port base + 89 (19181 by default) and its management port (health, metrics) the
next one, both bound to 127.0.0.1. The Confluent-compatible API is at
``http://127.0.0.1:<port>/apis/ccompat/v7``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.kafka_local.jars import Progress, locked, run_maven
from app.kafka_local.java import find_java
from app.kafka_local.layout import HOST, cluster_layout
from app.kafka_local.procs import (
    PidState,
    ProcessCheck,
    check_pid_file_of,
    is_alive,
    port_in_use,
    port_users,
    spawn_detached,
    stop_process,
    tail,
)
from app.settings import Settings
from schemas.errors import KafkaStackError

__all__ = [
    "CCOMPAT_PATH",
    "MINIMUM_JAVA",
    "RegistryInfo",
    "RegistryLayout",
    "ensure_registry_dist",
    "registry_command",
    "registry_layout",
    "registry_status",
    "start_registry",
    "stop_registry",
]

log = logging.getLogger(__name__)

MINIMUM_JAVA = 21
CCOMPAT_PATH = "/apis/ccompat/v7"
PORT_OFFSET = 89  # from the Kafka port base: 19092 → 19181 (and 19182 for management)
START_TIMEOUT = 180.0  # a JVM, Quarkus and a journal replay on two shared cores
STOP_TIMEOUT = 30.0
MARKER = ".complete"
#: the same maven-dependency-plugin the Kafka fetch pins in pom.xml
DEPENDENCY_PLUGIN = "3.8.1"
#: Kafka topics of its storage (created by the registry itself)
JOURNAL_TOPIC = "_deskstream-registry-journal"
SNAPSHOTS_TOPIC = "_deskstream-registry-snapshots"
EVENTS_TOPIC = "_deskstream-registry-events"


def _log_progress(message: str) -> None:
    log.info("%s", message)


@dataclass(frozen=True)
class RegistryLayout:
    version: str
    home: Path
    dist_dir: Path
    port: int
    management_port: int

    @property
    def url(self) -> str:
        """The Confluent-compatible API: what DESKSTREAM_SCHEMA_REGISTRY_URL points at."""
        return f"http://{HOST}:{self.port}{CCOMPAT_PATH}"

    @property
    def pid_path(self) -> Path:
        return self.home / "registry.pid"

    @property
    def out_path(self) -> Path:
        return self.home / "registry.out"

    @property
    def lock_path(self) -> Path:
        return self.home.parent.parent / f".{self.home.parent.name}-registry.lock"

    @property
    def marker_flag(self) -> str:
        """A JVM flag naming this registry's folder: how its process is told from others."""
        return f"-Ddeskstream.registry.home={self.home}"


@dataclass(frozen=True)
class RegistryInfo:
    url: str
    state: str  # a PidState value
    pid: int | None
    answering: bool
    already_running: bool = False
    detail: str = ""


def registry_layout(settings: Settings, brokers: int | None = None) -> RegistryLayout:
    cluster = cluster_layout(settings, brokers)
    port = settings.kafka_port_base + PORT_OFFSET
    if port + 1 > 65535:
        raise KafkaStackError(
            f"the schema registry's ports ({port}, {port + 1}) follow the Kafka port base "
            f"{settings.kafka_port_base}, and do not fit; lower DESKSTREAM_KAFKA_PORT_BASE"
        )
    dist = (settings.cache_dir / f"apicurio-registry-{settings.registry_version}").resolve()
    return RegistryLayout(
        settings.registry_version, cluster.cluster_dir / "registry", dist, port, port + 1
    )


def _check(layout: RegistryLayout) -> ProcessCheck:
    flag = layout.marker_flag
    return check_pid_file_of(layout.pid_path, lambda argv: flag in argv)


def ensure_registry_dist(settings: Settings, progress: Progress = _log_progress) -> Path:
    """The unpacked Apicurio Registry for ``settings.registry_version``, fetched once."""
    dist = registry_layout(settings).dist_dir
    with locked(dist.parent / f".apicurio-{settings.registry_version}.lock"):
        if (dist / MARKER).is_file():
            return dist
        shutil.rmtree(dist, ignore_errors=True)
        artifact = f"io.apicurio:apicurio-registry-app:{settings.registry_version}:tar.gz:all"
        progress(f"fetching Apicurio Registry {settings.registry_version} into {dist} ...")
        # Maven without a project, in a scratch folder: the unpack goal leaves "already
        # unpacked" markers in the project's target/, where a stale one would skip a fetch.
        scratch = dist.parent / f".apicurio-{settings.registry_version}-fetch"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            result = run_maven(
                [
                    f"org.apache.maven.plugins:maven-dependency-plugin:{DEPENDENCY_PLUGIN}:unpack",
                    f"-Dartifact={artifact}",
                    f"-DoutputDirectory={dist}",
                ],
                what="Apicurio Registry",
                retry="`deskstream kafka up`",
                cwd=scratch,
            )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if result.returncode != 0 or not (dist / "quarkus-run.jar").is_file():
            output = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise KafkaStackError(
                f"Maven could not fetch {artifact} (exit {result.returncode}); is "
                f"{settings.registry_version} a released version (DESKSTREAM_REGISTRY_VERSION) "
                "and Maven Central reachable? Maven said:\n  " + "\n  ".join(output)
            )
        (dist / MARKER).write_text(settings.registry_version + "\n", encoding="utf-8")
        progress(f"fetched Apicurio Registry {settings.registry_version}")
        return dist


def registry_command(
    layout: RegistryLayout, java: Path, heap: str, bootstrap_servers: str
) -> list[str]:
    """The JVM command line: every setting as a system property, visible in ``ps``."""
    properties = {
        "quarkus.http.host": HOST,
        "quarkus.http.port": layout.port,
        "quarkus.management.host": HOST,
        "quarkus.management.port": layout.management_port,
        "apicurio.storage.kind": "kafkasql",
        "apicurio.kafkasql.bootstrap.servers": bootstrap_servers,
        "apicurio.kafkasql.topic": JOURNAL_TOPIC,
        "apicurio.kafkasql.snapshots.topic": SNAPSHOTS_TOPIC,
        "apicurio.events.kafka.topic": EVENTS_TOPIC,
        "apicurio.storage.snapshot.location": layout.home,
        # One id per schema content, whatever the subject, as Confluent's registry gives.
        "apicurio.ccompat.legacy-id-mode.enabled": "false",
        'quarkus.log.category."org.apache.kafka".level': "WARN",
    }
    return [
        str(java),
        f"-Xmx{heap}",
        "-Djava.awt.headless=true",
        layout.marker_flag,
        *(f"-D{key}={value}" for key, value in properties.items()),
        "-jar",
        str(layout.dist_dir / "quarkus-run.jar"),
    ]


def _answers(layout: RegistryLayout) -> bool:
    try:
        return httpx.get(f"{layout.url}/subjects", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False


def _check_ports(layout: RegistryLayout) -> None:
    for port, role in ((layout.port, "HTTP"), (layout.management_port, "management")):
        if port_in_use(port):
            holder = ", ".join(u.describe() for u in port_users(port)) or "another process"
            raise KafkaStackError(
                f"port {port} (the schema registry's {role} port) is in use by {holder}; stop "
                "it, or move the stack with DESKSTREAM_KAFKA_PORT_BASE (the registry listens "
                f"on the port base + {PORT_OFFSET})"
            )


def _wait_ready(layout: RegistryLayout, pid: int, timeout: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(layout):
        if not is_alive(pid):
            layout.pid_path.unlink(missing_ok=True)
            lines = "\n  ".join(tail(layout.out_path, 20)) or "(it wrote nothing)"
            raise KafkaStackError(
                f"the schema registry (pid {pid}) exited during start-up; the last lines of "
                f"{layout.out_path}:\n  {lines}\nfix the cause shown there, then `deskstream "
                "kafka up` again"
            )
        if time.monotonic() >= deadline:
            raise KafkaStackError(
                f"the schema registry (pid {pid}) did not answer {layout.url} within "
                f"{timeout:.0f} s although still running; read {layout.out_path}, then "
                "`deskstream kafka down` and `up` again"
            )
        time.sleep(1.0)
    progress(f"schema registry is serving on {layout.url}")


def start_registry(
    settings: Settings,
    bootstrap_servers: str,
    *,
    brokers: int | None = None,
    progress: Progress = _log_progress,
    timeout: float = START_TIMEOUT,
) -> RegistryInfo:
    """Start the registry on the running local cluster (or report the running one)."""
    layout = registry_layout(settings, brokers)
    layout.home.mkdir(parents=True, exist_ok=True)
    with locked(layout.lock_path):
        check = _check(layout)
        if check.state in (PidState.STALE, PidState.FOREIGN):
            progress(f"schema registry: removing stale pid file ({check.detail})")
            layout.pid_path.unlink(missing_ok=True)
        if check.state is PidState.RUNNING and check.pid is not None:
            _wait_ready(layout, check.pid, timeout, progress)
            return RegistryInfo(layout.url, check.state.value, check.pid, True, True)
        java = find_java(MINIMUM_JAVA, purpose="Apicurio Registry (the local schema registry)")
        _check_ports(layout)
        dist = ensure_registry_dist(settings, progress)
        assert dist == layout.dist_dir
        progress(
            f"starting Apicurio Registry {layout.version} on {layout.url} "
            f"(Java {java.major}: {java.java}) ..."
        )
        argv = registry_command(layout, java.java, settings.registry_heap, bootstrap_servers)
        pid = spawn_detached(argv, layout.out_path, cwd=layout.home)
        layout.pid_path.write_text(f"{pid}\n", encoding="utf-8")
        log.info("schema registry started pid=%d url=%s", pid, layout.url)
        _wait_ready(layout, pid, timeout, progress)
        return RegistryInfo(layout.url, PidState.RUNNING.value, pid, True)


def stop_registry(
    settings: Settings,
    *,
    brokers: int | None = None,
    progress: Progress = _log_progress,
    timeout: float = STOP_TIMEOUT,
) -> list[str]:
    """Stop the cluster's registry (SIGTERM, SIGKILL after ``timeout``); what it did."""
    layout = registry_layout(settings, brokers)
    if not layout.home.is_dir():
        return []
    with locked(layout.lock_path):
        check = _check(layout)
        if check.state is not PidState.RUNNING or check.pid is None:
            layout.pid_path.unlink(missing_ok=True)
            return []
        progress("stopping the schema registry ...")
        killed = stop_process(check.pid, timeout=timeout)
        layout.pid_path.unlink(missing_ok=True)
        log.info("schema registry stopped pid=%d killed=%s", check.pid, killed)
        how = f"SIGKILL after {timeout:.0f} s" if killed else "SIGTERM"
        return [f"stopped the schema registry (pid {check.pid}, {how})"]


def registry_status(settings: Settings, *, brokers: int | None = None) -> RegistryInfo:
    layout = registry_layout(settings, brokers)
    check = _check(layout)
    running = check.state is PidState.RUNNING
    return RegistryInfo(
        layout.url, check.state.value, check.pid, running and _answers(layout), detail=check.detail
    )
