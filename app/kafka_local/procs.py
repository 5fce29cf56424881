"""Broker processes: pid files, "is this pid still our broker?", detached start, clean stop.

A pid file only proves a pid was ours once: pids are reused. So a pid counts as our broker
only while its command line runs ``kafka.Kafka`` with *this* node's ``server.properties``;
anything else is left alone and the pid file is called stale.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import KafkaStackError

__all__ = [
    "PidState",
    "PortUser",
    "ProcessCheck",
    "check_pid_file",
    "check_pid_file_of",
    "command_line",
    "find_brokers",
    "is_alive",
    "port_in_use",
    "port_users",
    "send_signal",
    "spawn_detached",
    "stop_process",
    "tail",
    "wait_or_kill",
]


class PidState(enum.Enum):
    RUNNING = "running"  # pid file names a live broker started for this node
    STOPPED = "stopped"  # no pid file
    STALE = "stale"  # pid file, but that process is gone
    FOREIGN = "foreign"  # pid file, pid alive, but it is some other program now


@dataclass(frozen=True)
class ProcessCheck:
    state: PidState
    pid: int | None
    detail: str = ""


def command_line(pid: int) -> list[str] | None:
    """The argv of a live process; None when it is gone or a zombie (dead, not yet reaped)."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text(encoding="utf-8", errors="replace")
        raw = (proc / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The state letter follows the last ")" (the command name may itself hold parentheses).
    if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def is_alive(pid: int) -> bool:
    return command_line(pid) is not None


def _is_our_broker(argv: Sequence[str], config_path: Path) -> bool:
    return "kafka.Kafka" in argv and str(config_path) in argv


def check_pid_file(pid_path: Path, config_path: Path) -> ProcessCheck:
    """What a node's pid file says, judged against the live process table."""
    return check_pid_file_of(pid_path, lambda argv: _is_our_broker(argv, config_path))


def check_pid_file_of(pid_path: Path, is_ours: Callable[[Sequence[str]], bool]) -> ProcessCheck:
    """What a pid file says, the process counted ours when ``is_ours(its argv)``."""
    try:
        text = pid_path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ProcessCheck(PidState.STOPPED, None)
    if not text.isdigit():
        return ProcessCheck(PidState.STALE, None, f"pid file {pid_path} holds {text[:20]!r}")
    pid = int(text)
    argv = command_line(pid)
    if argv is None:
        return ProcessCheck(PidState.STALE, pid, f"process {pid} is gone")
    if not is_ours(argv):
        shown = " ".join(argv)[:120]
        return ProcessCheck(
            PidState.FOREIGN, pid, f"pid {pid} now belongs to another program ({shown})"
        )
    return ProcessCheck(PidState.RUNNING, pid)


def find_brokers(config_paths: Sequence[Path]) -> dict[Path, int]:
    """Live broker processes started with one of ``config_paths`` (whatever the pid files say)."""
    wanted = {str(path): path for path in config_paths}
    found: dict[Path, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        argv = command_line(int(proc.name))
        if argv and "kafka.Kafka" in argv and argv[-1] in wanted:
            found[wanted[argv[-1]]] = int(proc.name)
    return found


def spawn_detached(argv: Sequence[str], output: Path, cwd: Path) -> int:
    """Start ``argv`` in its own session, detached from us, output to ``output``; its pid.

    A small ``sh`` starts the program in the background and exits at once, so the broker is
    re-parented away from us: it outlives ``deskstream kafka up``, never turns into a zombie
    of a long-lived Python process (pytest), and no Popen object warns about it later.
    """
    launcher = 'out="$1"; shift; "$@" >>"$out" 2>&1 </dev/null & echo $!'
    result = subprocess.run(
        ["/bin/sh", "-c", launcher, "sh", str(output), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=30,
        check=False,
    )
    pid_text = result.stdout.strip()
    if result.returncode != 0 or not pid_text.isdigit():
        raise KafkaStackError(
            f"could not start {argv[0]} (sh exit {result.returncode}: "
            f"{result.stderr.strip()[:200]}); is Java installed and on PATH?"
        )
    return int(pid_text)


def send_signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_process(pid: int, *, timeout: float, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig``, wait up to ``timeout`` s, then SIGKILL. True if it had to be killed."""
    send_signal(pid, sig)
    return wait_or_kill(pid, timeout)


def wait_or_kill(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to exit, then SIGKILL it. True if killed."""
    if _wait_gone(pid, timeout):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, 10.0):
        raise KafkaStackError(f"process {pid} survived SIGKILL for 10 s; check it with `ps {pid}`")
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when binding ``host:port`` fails, i.e. some process listens there already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the JVM sets it: sockets in TIME_WAIT must not count as "taken".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


_TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}


@dataclass(frozen=True)
class PortUser:
    """One socket whose local end is the port: its TCP state and, if visible, its process."""

    state: str
    owner: str | None

    @property
    def listening(self) -> bool:
        return self.state == "LISTEN"

    def describe(self) -> str:
        if self.listening:
            return self.owner or "a process this user cannot see"
        who = f" of {self.owner}" if self.owner else ""
        return f"an outgoing connection{who} (TCP {self.state})"


def port_users(port: int) -> list[PortUser]:
    """Every TCP socket bound to local ``port``, from /proc (Linux; [] elsewhere)."""
    sockets: list[tuple[str, str]] = []  # (state, inode)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                # fields: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                fields = line.split()
                if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    sockets.append((_TCP_STATES.get(fields[3], f"state {fields[3]}"), fields[9]))
    owners = _socket_owners({inode for _, inode in sockets if inode != "0"})
    return [PortUser(state, owners.get(inode)) for state, inode in sockets]


def _socket_owners(inodes: set[str]) -> dict[str, str]:
    owners: dict[str, str] = {}
    if not inodes:
        return owners
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    argv = command_line(int(proc.name)) or ["?"]
                    if "kafka.Kafka" in argv:
                        owners[target[8:-1]] = (
                            f"pid {proc.name} (a Kafka broker running {argv[-1]})"
                        )
                    else:
                        owners[target[8:-1]] = f"pid {proc.name} ({' '.join(argv)[:100]})"
    return owners


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a text file ([] when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]
