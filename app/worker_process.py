"""Run ``deskstream worker`` as a child process and wait until it is ready.

Used by the demo, the benchmarks and the end-to-end tests: each needs a real worker with its
own settings (environment), its log in a file, and a clean stop.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from schemas.errors import DeskstreamError

__all__ = ["RunningWorker", "free_port", "run_worker"]


class RunningWorker:
    """One ``deskstream worker`` child process: started, stopped (SIGTERM), killed (SIGKILL)
    and started again with the same settings, port and log (the cluster tests do all four)."""

    def __init__(self, env: Mapping[str, str], *, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._env = {**os.environ, **env, "DESKSTREAM_WEB_PORT": str(port)}
        self._process: subprocess.Popen[bytes] | None = None
        #: stopped or killed by whoever runs it (not a crash)
        self.stopped_on_purpose = False

    @property
    def env(self) -> dict[str, str]:
        """The environment the worker runs with: a ``deskstream`` command run with it sees the
        same settings (the rehearsal's backfill and reconcile runs)."""
        return dict(self._env)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise DeskstreamError("the worker was never started; call start() first")
        return self._process

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def critical_lines(self) -> list[str]:
        """The log's records at critical level (a crash, or a send it could not confirm)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line[:500] for line in text.splitlines() if '"level": "critical"' in line]

    def start(self, *, ready_timeout: float = 120.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker"], env=self._env, stdout=out, stderr=out
            )
        self.stopped_on_purpose = False
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float) -> None:
        """Wait until ``/ready`` answers 200 (joined, not rebalancing, tables recovered);
        ``DeskstreamError`` if the process exits or ``timeout`` passes first."""
        _wait_ready(self, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush: a crash."""
        self.stopped_on_purpose = True
        if self.alive:
            self.process.kill()
            self.process.wait()

    def stop(self, *, timeout: float = 30.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``): a graceful stop, as a deploy does."""
        self.stopped_on_purpose = True
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(worker: RunningWorker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise DeskstreamError(
                f"the worker exited with status {worker.process.returncode}; its log "
                f"({worker.log}) ends with:\n{worker.log_tail()}"
            )
        try:
            response = httpx.get(f"{worker.url}/ready", timeout=2.0)
            if response.status_code == 200:
                return
            last = str(response.json().get("checks"))
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise DeskstreamError(
        f"the worker was not ready after {timeout:.0f} s (last: {last}); see {worker.log}"
    )


@contextmanager
def run_worker(
    env: Mapping[str, str], *, port: int, log: Path, ready_timeout: float = 120.0
) -> Iterator[RunningWorker]:
    """Start a worker with ``env`` on top of this process's environment; stop it on exit."""
    worker = RunningWorker(env, port=port, log=log)
    try:
        worker.start(ready_timeout=ready_timeout)
        yield worker
    finally:
        worker.stop()
