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
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.errors import DeskstreamError

__all__ = ["RunningWorker", "free_port", "run_worker"]


@dataclass(frozen=True)
class RunningWorker:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


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
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env, "DESKSTREAM_WEB_PORT": str(port)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"], env=full_env, stdout=out, stderr=out
        )
    worker = RunningWorker(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        _wait_ready(worker, ready_timeout)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
