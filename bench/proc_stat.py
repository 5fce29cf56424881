"""A process's CPU time and age, from Linux's ``/proc/<pid>/stat``: what the benchmarks
measure a worker's cost and a broker's warm-up with."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "process_age"]


def _fields(pid: int) -> list[str]:
    """The fields after the process name, the state (field 3) first: the name (field 2) may
    hold spaces and brackets, so count from the last ")"."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15)."""
    fields = _fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_age(pid: int) -> float | None:
    """Seconds since process ``pid`` started (field 22, in clock ticks after boot); None where
    unknown (no such process, or no ``/proc``)."""
    try:
        start_ticks = int(_fields(pid)[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return None
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
