"""A load generator's HTTP/1.1 client: keep-alive connections that send request bytes built
beforehand and read back only the status.

On two shared cores the load generator takes CPU from the worker it measures. aiohttp's client
costs about as much per request as the worker's whole answer (``docs/performance.md``,
"Webhook ingest with a lighter load generator"), so a burst measured through it tells as much
about the client as about the worker. This one does what a benchmark needs and nothing more:
no redirects, cookies, compression or chunked answers (the worker answers with a
``Content-Length``), one request in flight per connection. Not for product code: the sinks
use ``connectors.base.http``.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import Mapping

__all__ = ["Connection", "Pool", "post_request"]

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def post_request(host: str, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The bytes of one ``POST`` of ``body`` (JSON) on a keep-alive connection."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Answers(asyncio.Protocol):
    """Reads answers off one connection and hands each one's status to the waiting request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting: asyncio.Future[int] | None = None
        #: the server closed it (after an answer, too: a keep-alive that timed out)
        self.closed = False
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        head_end = buffer.find(b"\r\n\r\n")
        if head_end == -1:
            return
        length = _LENGTH.search(buffer, 0, head_end + 2)
        if length is None:
            self._fail(ConnectionError("an answer without Content-Length"))
            return
        end = head_end + 4 + int(length.group(1))
        if len(buffer) < end:
            return
        status = int(buffer[9:12])
        del buffer[:end]
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)


class Connection:
    """One keep-alive connection, one request at a time."""

    def __init__(self, answers: _Answers) -> None:
        self._answers = answers

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, answers = await loop.create_connection(_Answers, host, port)
        return cls(answers)

    @property
    def closed(self) -> bool:
        return self._answers.closed

    async def send(self, request: bytes) -> int:
        """Send ``request`` (``post_request``); its answer's status."""
        answers = self._answers
        if answers.closed:
            raise ConnectionError("the server closed the connection")
        assert answers.transport is not None
        assert answers.waiting is None  # one request in flight per connection
        answers.waiting = asyncio.get_running_loop().create_future()
        answers.transport.write(request)
        return await answers.waiting

    def close(self) -> None:
        if self._answers.transport is not None:
            self._answers.transport.close()


class Pool:
    """Up to ``limit`` connections, opened as requests need them (as a platform opens them
    when its deliveries pile up); a request beyond them waits for one to be free, first come
    first served. A connection the server closed is replaced. A failed request fails the
    run: a benchmark does not retry."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self._host, self._port, self._limit = host, port, limit
        self._idle: list[Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self._all: list[Connection] = []

    async def send(self, request: bytes) -> int:
        connection = await self._take()
        try:
            status = await connection.send(request)
        except BaseException:
            self._give_back(None, connection)
            raise
        self._give_back(connection, connection)
        return status

    async def _take(self) -> Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open -= 1
        if self._open >= self._limit:
            waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed  # a free connection, handed over in order
            # None: a connection went away, and its slot is this request's to open
        else:
            self._open += 1
        try:
            connection = await Connection.open(self._host, self._port)
        except BaseException:
            self._give_back(None, None)
            raise
        self._all.append(connection)
        return connection

    def _give_back(self, connection: Connection | None, used: Connection | None) -> None:
        """``connection`` free again (None: ``used`` failed, or was never opened): to the
        first waiter, else idle; a connection that is gone frees its slot instead."""
        if connection is not None and connection.closed:
            connection = None
        if connection is None:
            if used is not None:
                used.close()
            self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled meanwhile
                continue
            if connection is None:
                self._open += 1  # the waiter opens one in the freed slot
            waiter.set_result(connection)
            return
        if connection is not None:
            self._idle.append(connection)

    def close(self) -> None:
        for connection in self._all:
            connection.close()
        self._all.clear()
        self._idle.clear()
