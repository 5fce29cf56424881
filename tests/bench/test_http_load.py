"""The load generator's HTTP/1.1 client (``bench.http_load``) against a real aiohttp server,
the framework the worker answers webhooks with: requests arrive whole, answers are read
whatever their size, connections are kept alive and never more than the pool's limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bench.http_load import Connection, Pool, post_request


@dataclass
class Server:
    host: str
    port: int
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    #: connections open at once, at most; and every connection ever opened
    peak: int = 0
    open_now: int = 0
    peers: set[object] = field(default_factory=set)
    gate: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    found = Server("127.0.0.1", 0)
    found.gate.set()

    async def answer(request: web.Request) -> web.Response:
        found.peers.add(request.transport)
        found.open_now += 1
        found.peak = max(found.peak, found.open_now)
        try:
            await found.gate.wait()
            body = await request.read()
            found.received.append((request.path, dict(request.headers), body))
            if request.path == "/close":  # a server that goes away mid-request
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            if request.path == "/big":
                return web.Response(body=b"x" * 200_000)  # more than one read's worth
            status = 202 if json.loads(body).get("n", 0) % 2 else 200
            return web.json_response({"ok": True}, status=status)
        finally:
            found.open_now -= 1

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield found
    await runner.cleanup()


def _request(server: Server, path: str, n: int) -> bytes:
    body = json.dumps({"n": n}).encode()
    return post_request(f"{server.host}:{server.port}", path, body, {"X-Signature": f"s{n}"})


async def test_one_connection_carries_every_request_and_reads_each_answer(server: Server) -> None:
    connection = await Connection.open(server.host, server.port)
    try:
        statuses = [await connection.send(_request(server, "/hooks", n)) for n in range(5)]
        assert await connection.send(_request(server, "/big", 5)) == 200
    finally:
        connection.close()
    assert statuses == [200, 202, 200, 202, 200]
    assert [(path, json.loads(body)["n"]) for path, _, body in server.received] == [
        ("/hooks", 0),
        ("/hooks", 1),
        ("/hooks", 2),
        ("/hooks", 3),
        ("/hooks", 4),
        ("/big", 5),
    ]
    assert {headers["X-Signature"] for _, headers, _ in server.received} == {
        f"s{n}" for n in range(6)
    }
    assert len(server.peers) == 1  # kept alive


async def test_the_pool_opens_no_more_than_its_limit_and_reuses_them(server: Server) -> None:
    pool = Pool(server.host, server.port, 3)
    server.gate.clear()  # answers held until all are sent: the pool's limit is what waits
    sends = [asyncio.ensure_future(pool.send(_request(server, "/", 2 * n))) for n in range(12)]
    try:
        await asyncio.sleep(0.2)
        assert server.open_now == 3
    finally:
        server.gate.set()
    try:
        assert await asyncio.gather(*sends) == [200] * 12
    finally:
        pool.close()
    assert (server.peak, len(server.peers), len(server.received)) == (3, 3, 12)


async def test_a_server_that_closes_fails_the_request(server: Server) -> None:
    connection = await Connection.open(server.host, server.port)
    try:
        with pytest.raises(ConnectionError):
            await connection.send(_request(server, "/close", 0))
    finally:
        connection.close()


class _Scripted(asyncio.Protocol):
    """A server that answers every request with ``answer``'s pieces, one write each, then
    closes if told to (``close_after``)."""

    def __init__(self, pieces: list[bytes], *, close_after: bool, seen: list[object]) -> None:
        self._pieces, self._close_after, self._seen = pieces, close_after, seen
        self._answering: set[asyncio.Future[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._seen.append(transport)

    def data_received(self, data: bytes) -> None:
        answering = asyncio.ensure_future(self._answer())
        self._answering.add(answering)
        answering.add_done_callback(self._answering.discard)

    async def _answer(self) -> None:
        for piece in self._pieces:
            self._transport.write(piece)
            await asyncio.sleep(0.01)  # each piece its own read on the client
        if self._close_after:
            self._transport.close()


async def _scripted(pieces: list[bytes], *, close_after: bool = False) -> tuple[Any, list[object]]:
    seen: list[object] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Scripted(pieces, close_after=close_after, seen=seen), "127.0.0.1", 0
    )
    return server, seen


async def test_an_answer_in_pieces_is_read_whole_and_its_length_from_its_head_only() -> None:
    body = b'{"note": "\\r\\nContent-Length: 999"}'
    pieces = [
        b"HTTP/1.1 201 Created\r\nContent-Ty",
        b"pe: application/json\r\nContent-Le",
        f"ngth: {len(body)}\r\n\r\n".encode() + body[:5],
        body[5:],
    ]
    server, _ = await _scripted(pieces)
    port = server.sockets[0].getsockname()[1]
    connection = await Connection.open("127.0.0.1", port)
    try:
        request = post_request(f"127.0.0.1:{port}", "/", b"{}", {})
        assert [await connection.send(request) for _ in range(3)] == [201, 201, 201]
    finally:
        connection.close()
        server.close()


async def test_the_pool_replaces_a_connection_the_server_closed_after_answering() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    server, seen = await _scripted([answer], close_after=True)
    port = server.sockets[0].getsockname()[1]
    pool = Pool("127.0.0.1", port, 1)
    try:
        request = post_request(f"127.0.0.1:{port}", "/", b"{}", {})
        statuses = []
        for _ in range(3):
            statuses.append(await pool.send(request))
            await asyncio.sleep(0.05)  # the close reaches the client
        assert statuses == [200, 200, 200]
        assert len(seen) == 3  # a new connection each time, within the limit of one
    finally:
        pool.close()
        server.close()
