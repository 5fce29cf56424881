"""Helpers for the local Kafka stack's unit tests: settings in a temp dir, fake formatting,
and a stand-in broker process.

A ``FakeBroker`` is a sleeping Python process whose command line looks like a broker's
(``... kafka.Kafka <node>/server.properties``): the stack recognises its brokers by exactly
that, so tests using it exercise the real recognition, stop and kill paths without a JVM.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.kafka_local.layout import NodeSpec
from app.settings import Settings, load_settings

__all__ = [
    "FakeBroker",
    "fake_format",
    "free_port_base",
    "local_settings",
    "parse_properties",
    "write_pid",
]


def local_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"state_dir": tmp_path / "state", "kafka_bootstrap_servers": None}
    return load_settings(**{**values, **overrides})


def parse_properties(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def free_port_base() -> int:
    """A port base whose broker and controller ports are both free right now."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 1 <= 65000 and port >= 1024:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port pair found")


class FakeBroker:
    """A sleeping Python process with a Kafka broker's command line for ``node``."""

    def __init__(self, node: NodeSpec, *, ignore_sigterm: bool = False) -> None:
        code = "import signal, sys, time\n"
        if ignore_sigterm:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(120)\n"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "kafka.Kafka", str(node.config_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def write_pid(node: NodeSpec, pid: int | str) -> None:
    node.node_dir.mkdir(parents=True, exist_ok=True)
    node.pid_path.write_text(f"{pid}\n")


def fake_format(node: NodeSpec, cluster_id: str, node_id: int | None = None) -> None:
    node.data_dir.mkdir(parents=True, exist_ok=True)
    meta = f"version=1\nnode.id={node_id or node.node_id}\ncluster.id={cluster_id}\n"
    (node.data_dir / "meta.properties").write_text("#\n" + meta)
