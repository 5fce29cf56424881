"""A loopback webhook receiver that records what the sandboxes deliver.

Used by tests and ``bench/`` to measure deliveries against a real HTTP server (no mocks), and
handy for watching a sandbox's notifications by hand. It can be told to answer the next
deliveries with an error status, to exercise the platforms' retry policies.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["Delivery", "LoopbackReceiver"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the receiver got: path, headers and raw body, and what it answered."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int


class LoopbackReceiver:
    """``async with LoopbackReceiver() as rx:`` serves on ``rx.url`` (an ephemeral port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record: bool = True) -> None:
        self.host = host
        self.port = port
        self.record = record
        self.deliveries: list[Delivery] = []
        self.count = 0
        self._plan: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` deliveries with ``status`` instead of 200."""
        self._plan.extend([status] * count)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self._plan.popleft() if self._plan else 200
        self.count += 1
        if self.record:
            self.deliveries.append(Delivery(request.path, dict(request.headers), body, status))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=status)

    async def wait_for(self, count: int) -> None:
        """Wait until at least ``count`` deliveries arrived (wrap in ``asyncio.timeout``)."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.count >= count)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
