"""The benchmarks' cold-broker warning (``bench.broker_age``): a process's age read from
``/proc``, and the warning given for a young broker only."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.kafka_local.stack import ClusterInfo, NodeInfo
from bench.broker_age import WARM_AFTER_S, cold_broker_warning
from bench.proc_stat import process_age

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@pytest.fixture
def young() -> Iterator[int]:
    """A process started just now (the stand-in for a broker just started)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _cluster(*pids: int) -> ClusterInfo:
    nodes = [
        NodeInfo(n, "running", pid, 9092 + n, 9093 + n, Path("."), Path("."))
        for n, pid in enumerate(pids, 1)
    ]
    return ClusterInfo(bootstrap_servers="127.0.0.1:9092", local=True, nodes=nodes)


def test_a_process_started_now_is_seconds_old_and_pid_1_is_older(young: int) -> None:
    age = process_age(young)
    assert age is not None
    assert 0 <= age < 30
    oldest = process_age(1)  # init started before this test's process
    assert oldest is not None
    assert oldest >= age


def test_no_such_process_has_no_age() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: its pid names no process now
    assert process_age(process.pid) is None


def test_a_young_broker_is_warned_of_and_a_warm_one_is_not(young: int) -> None:
    warning = cold_broker_warning(_cluster(young))
    assert warning is not None
    assert "started" in warning
    assert "run again" in warning
    # the youngest node counts: one young broker among warm ones still warms the cluster up
    assert cold_broker_warning(_cluster(1, young)) is not None
    init_age = process_age(1)
    assert init_age is not None
    assert init_age > 1
    # pid 1 (as old as the machine or its container) has run longer than the bound asked
    assert cold_broker_warning(_cluster(1), warm_after=min(init_age - 1, WARM_AFTER_S)) is None


def test_a_cluster_of_unknown_age_gets_no_warning() -> None:
    external = ClusterInfo(bootstrap_servers="kafka.example:9092", local=False)
    assert cold_broker_warning(external) is None
