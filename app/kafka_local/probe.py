"""Ask a cluster which brokers it has, through aiokafka's admin client (a metadata request).

Callable from plain code and from inside a running event loop (pytest-asyncio tests, the
worker): the sync wrapper runs the probe on a private loop in a helper thread then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["ClusterView", "describe_cluster", "describe_cluster_async", "run_sync", "tcp_open"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterView:
    """What the cluster itself says: its id, controller and the brokers it has registered."""

    cluster_id: str | None
    controller_id: int | None
    brokers: dict[int, str]  # node id -> "host:port"


def tcp_open(address: str, timeout: float = 1.0) -> bool:
    """True when ``host:port`` accepts a TCP connection (cheap check before a Kafka request)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout) as conn:
            # Close with a reset: no TIME_WAIT left holding one of the ephemeral ports that
            # node 3's listeners (39092...) live among.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True
    except (OSError, ValueError):
        return False


async def describe_cluster_async(bootstrap_servers: str, within: float = 5.0) -> ClusterView:
    """One metadata round trip; raises (aiokafka's errors, TimeoutError) when nobody answers."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(within * 1000),
        client_id="deskstream-kafka-probe",
    )
    try:
        async with asyncio.timeout(within):
            await admin.start()
            meta = await admin.describe_cluster()
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    brokers = {int(b["node_id"]): f"{b['host']}:{b['port']}" for b in meta.get("brokers", [])}
    controller = meta.get("controller_id")
    return ClusterView(
        cluster_id=meta.get("cluster_id"),
        controller_id=int(controller) if controller is not None and controller >= 0 else None,
        brokers=brokers,
    )


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, whether or not a loop is running here."""

    async def runner() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-probe") as pool:
        return pool.submit(asyncio.run, runner()).result()


def describe_cluster(bootstrap_servers: str, timeout: float = 5.0) -> ClusterView | None:
    """The cluster's view of itself, or None when it does not answer within ``timeout``."""
    first = bootstrap_servers.split(",")[0].strip()
    if not any(tcp_open(s.strip()) for s in bootstrap_servers.split(",")):
        log.debug("kafka probe no listener bootstrap=%s", first)
        return None
    try:
        return run_sync(lambda: describe_cluster_async(bootstrap_servers, timeout))
    except Exception as exc:  # aiokafka raises a zoo of errors while a broker starts
        log.debug("kafka probe failed bootstrap=%s error=%r", bootstrap_servers, exc)
        return None
