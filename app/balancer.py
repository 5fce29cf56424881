"""A round-robin front for the webhook endpoints of several workers, as the load balancer in
front of a production cluster is: the rehearsal's sandboxes deliver through it, so a worker
that is stopped or killed mid-run takes no deliveries with it.

Like a load balancer, it tries the next worker only when a connection could not be made (the
request never left); a worker that dies while answering gets a 502 back to the platform, whose
webhook retries deliver it again. With no worker reachable it answers 503, which platforms
retry too. Loopback only; it forwards the request as it came (headers, body, query), so the
signatures the workers check are the platforms' own.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

import httpx
from aiohttp import web

__all__ = ["Balancer"]

log = logging.getLogger(__name__)

#: headers that belong to one hop (RFC 9110 §7.6.1), never forwarded
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class Balancer:
    def __init__(self, targets: Callable[[], Sequence[str]]) -> None:
        """``targets()``: the workers' base URLs, read at every request (workers come and go)."""
        self._targets = targets
        self._turn = itertools.count()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0))
        self._runner: web.AppRunner | None = None
        self.forwarded = 0
        self.unreachable = 0

    async def start(self, port: int) -> str:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self._http.aclose()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        targets = list(self._targets())
        start = next(self._turn)
        for i in range(len(targets)):
            base = targets[(start + i) % len(targets)]
            try:
                answer = await self._http.request(
                    request.method,
                    f"{base}{request.path_qs}",
                    content=body,
                    headers=headers,
                )
            except httpx.ConnectError:
                continue  # the request never left: the next worker takes it
            except httpx.HTTPError as exc:
                log.warning("balancer: worker %s failed mid-request: %r", base, exc)
                return web.Response(status=502, text="the worker failed while answering")
            self.forwarded += 1
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            kept.pop("content-encoding", None)  # httpx decoded the body
            return web.Response(status=answer.status_code, body=answer.content, headers=kept)
        self.unreachable += 1
        return web.Response(
            status=503, text="no worker is reachable; retry later", headers={"Retry-After": "1"}
        )
