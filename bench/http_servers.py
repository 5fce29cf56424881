"""What answering one webhook costs the HTTP server alone, by server: the worker's CPU per
request with the handler doing nothing but read the body and answer a fixed JSON.

    .venv/bin/python -m bench.http_servers [--requests 50000] [--concurrency 64] [--rounds 3]

Each server runs in a process of its own; this one sends signed-size POSTs over keep-alive
connections (``bench.http_load``), so the server process's CPU over a round, divided by the
requests, is what the server costs a delivery before Deskstream's own work. Servers:

- a Faust view on Faust's aiohttp application (what ``POST /webhooks/{connector_id}`` was
  before 2026-12-06);
- a plain aiohttp handler on Faust's aiohttp application (what it is now);
- aiohttp's low-level server (no application, no router);
- an ``asyncio.Protocol`` with httptools' parser, only when httptools is installed (it is not
  a dependency: ``.venv/bin/pip install httptools`` to include it).

Every server process first builds a Faust app, keeps it, and takes the worker's collector
settings (``bench.worker_like``), whichever server it then runs: Faust's Prometheus monitor among
the app's sensors (a view reports every request to it) and CORS's response hook, as a
started worker has them. An earlier version, whose server processes did not all build the
app, measured the same aiohttp application far apart with and without it, so only processes
alike compare. The httptools server parses what a handler needs (method, URL, headers, body)
and answers 404 off the route; it does not write ``Date`` or ``Server`` headers.
The rounds alternate the servers and each server's ratio is to the one running now in the
same round, so a drift of the machine between rounds cancels out of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.worker_process import free_port
from bench.figures import row
from bench.http_load import Pool, post_request
from bench.proc_stat import cpu_seconds
from bench.worker_like import faust_app, ready_as_a_worker

BODY = json.dumps(
    {
        "source": {"entity_type": "case", "entity_id": "42"},
        "subject": "Order 42 never arrived",
        "description": "The parcel left the warehouse a week ago " * 4,
    }
).encode()
HEADERS = {
    "X-Deskstream-Timestamp": "1764979200",
    "X-Deskstream-Signature": "sha256=" + "0" * 64,
}
ANSWER = {"status": "accepted", "delivery_id": "generic:bench"}
ROUTE = "/webhooks/{connector_id}"


async def _run_application(application: Any, port: int) -> None:
    from aiohttp import web

    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()


def _faust_view(app: Any, port: int) -> Callable[[], Awaitable[None]]:
    from faust import web

    @app.page(ROUTE)
    class Webhook(web.View):
        async def post(self, request: web.Request, connector_id: str) -> web.Response:
            await request.read()
            return self.json(ANSWER)

    return lambda: _run_application(app.web.web_app, port)


async def _answer(request: Any) -> Any:
    """What both aiohttp servers' handlers do: read the body, answer as the worker does."""
    from aiohttp import web

    await request.read()
    text = json.dumps(ANSWER, separators=(",", ":"))
    return web.Response(text=text, content_type="application/json")


def _aiohttp_handler(app: Any, port: int) -> Callable[[], Awaitable[None]]:
    app.web.web_app.router.add_post(ROUTE, _answer)
    return lambda: _run_application(app.web.web_app, port)


def _aiohttp_low_level(app: Any, port: int) -> Callable[[], Awaitable[None]]:
    from aiohttp import web

    async def serve() -> None:
        server = web.Server(_answer, access_log=None)
        await asyncio.get_running_loop().create_server(server, "127.0.0.1", port)

    return serve


def _httptools_protocol(app: Any, port: int) -> Callable[[], Awaitable[None]]:
    import httptools  # type: ignore[import-not-found,unused-ignore]

    class Webhook(asyncio.Protocol):
        """One connection: parse requests, answer each once its body is complete."""

        def __init__(self) -> None:
            self._parser = httptools.HttpRequestParser(self)
            self._url = b""
            self._headers: list[tuple[bytes, bytes]] = []
            self._body: list[bytes] = []
            self._transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self._transport = transport

        def data_received(self, data: bytes) -> None:
            self._parser.feed_data(data)

        def on_url(self, url: bytes) -> None:
            self._url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self._headers.append((name, value))  # a handler needs them: signature, kept ones

        def on_body(self, body: bytes) -> None:
            self._body.append(body)

        def on_message_complete(self) -> None:
            routed = self._parser.get_method() == b"POST" and self._url.startswith(b"/webhooks/")
            headers = {name.decode().lower(): value.decode() for name, value in self._headers}
            b"".join(self._body)  # what a handler would read
            self._url, self._headers, self._body = b"", [], []
            status = "200 OK" if routed and "content-length" in headers else "404 Not Found"
            text = json.dumps(ANSWER, separators=(",", ":")).encode()
            head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            assert self._transport is not None
            self._transport.write(f"{head}Content-Length: {len(text)}\r\n\r\n".encode() + text)

    async def serve() -> None:
        await asyncio.get_running_loop().create_server(Webhook, "127.0.0.1", port)

    return serve


#: the server the others are compared with, round by round
NOW = "aiohttp handler (now)"
SERVERS: dict[str, Callable[[Any, int], Callable[[], Awaitable[None]]]] = {
    "Faust view (before)": _faust_view,
    NOW: _aiohttp_handler,
    "aiohttp low-level server": _aiohttp_low_level,
    "asyncio + httptools": _httptools_protocol,
}


def _available() -> list[str]:
    names = list(SERVERS)
    if importlib.util.find_spec("httptools") is None:
        names.remove("asyncio + httptools")
    return names


def _serve(name: str, port: int) -> None:
    async def main() -> None:
        app = faust_app()  # kept for the whole run, as a worker keeps its own
        await SERVERS[name](app, port)()
        ready_as_a_worker()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _round(port: int, pid: int, requests: int, concurrency: int) -> tuple[float, float]:
    """CPU µs of the server per request, and requests per second."""
    pool = Pool("127.0.0.1", port, concurrency)
    request = post_request(f"127.0.0.1:{port}", "/webhooks/bench", BODY, HEADERS)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            status = await pool.send(request)
            if status != 200:
                raise RuntimeError(f"the server answered {status}")

    try:
        await asyncio.gather(*(one() for _ in range(min(requests, 1000))))  # warm up
        cpu, started = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - started
        return (cpu_seconds(pid) - cpu) / requests * 1e6, requests / elapsed
    finally:
        pool.close()


def _measure(name: str, requests: int, concurrency: int) -> tuple[float, float]:
    port = free_port()
    command = [sys.executable, "-m", "bench.http_servers", "--serve", name, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {name!r} server did not start (its output is above)")
        return asyncio.run(_round(port, server.pid, requests, concurrency))
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=list(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        _serve(args.serve, args.port)
        return
    names = _available()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            results[name].append(_measure(name, args.requests, args.concurrency))
    now = results[NOW]
    print(f"{args.requests} requests a round, {args.concurrency} connections, server CPU")
    print(row("round: server", "CPU us/req", "req/s", "vs now"))
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for number in range(args.rounds):
        for name in names:
            cpu, rate = results[name][number]
            ratios[name].append(cpu / now[number][0])  # against "now" in the same round
            print(row(f"{number + 1}: {name}", f"{cpu:.1f}", f"{rate:.0f}", ratios[name][-1]))
    for name in names:
        cpu = statistics.median(cpu for cpu, _ in results[name])
        ratio = statistics.median(ratios[name])
        print(row(f"median: {name}", f"{cpu:.1f}", "", ratio))
    if "asyncio + httptools" not in names:
        print("(asyncio + httptools not measured: httptools is not installed)")


if __name__ == "__main__":
    main()
