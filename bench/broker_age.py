"""How long the local broker has run, and a warning when it is too young to measure with.

A broker's JVM compiles its hot paths in its first minutes. On this project's 2-core machine
``bench.ingest_pipeline`` three times in a row on a broker just started gave webhook ingest
2,523, 3,689 and 5,156 deliveries/s and normalize 8,971, 9,219 and 10,533 events/s
(``docs/performance.md``, "A broker just started is slower"): a benchmark run then measures
the broker's warm-up, not the worker.
"""

from __future__ import annotations

from app.kafka_local.stack import ClusterInfo
from bench.proc_stat import process_age

__all__ = ["WARM_AFTER_S", "cold_broker_warning"]

#: a broker younger than this is still warming up (the third run above began at about 90 s)
WARM_AFTER_S = 180.0


def cold_broker_warning(cluster: ClusterInfo, warm_after: float = WARM_AFTER_S) -> str | None:
    """A line to print when the local cluster's youngest broker has run less than
    ``warm_after`` seconds; None when it is warm or its age is unknown (a cluster given by
    KAFKA_BOOTSTRAP_SERVERS)."""
    ages = [process_age(node.pid) for node in cluster.nodes if node.pid is not None]
    known = [age for age in ages if age is not None]
    if not known or min(known) >= warm_after:
        return None
    return (
        f"warning: the broker started {min(known):.0f} s ago; a broker's first minutes measure "
        f"low (its JVM still compiling), so read this run as a cold start and run again once "
        f"it has run {warm_after:.0f} s (docs/performance.md)"
    )
