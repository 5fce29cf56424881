"""An httpx transport that sends through aiohttp: the platform clients keep httpx's API
(requests, responses, auth flows, event hooks, ``MockTransport`` in tests) and spend
aiohttp's CPU on the wire.

httpx's own transport (httpcore, h11, anyio) costs several times more CPU per call than
aiohttp's, whose HTTP parser is compiled (``bench/http_client.py``, ``docs/performance.md``).
This transport does what ``httpx.AsyncHTTPTransport`` does for the clients in
``connectors/``: HTTP/1.1 with keep-alive, no redirects followed (httpx decides), cookies left
to httpx, bodies handed back undecoded (httpx decodes ``Content-Encoding``), httpx's timeouts
(``connect``, ``read``, ``pool``) applied.

Failures come back as the httpx exceptions ``connectors.base.http`` classifies, in the same
two kinds: before the request left (``ConnectError``, ``ConnectTimeout``,
``UnsupportedProtocol``: a retry is safe) and after it may have left (``ReadTimeout``,
``WriteError``, ``ReadError``, ``RemoteProtocolError``: the platform may have applied it).
aiohttp would otherwise send a PUT or DELETE a second time on its own when a kept-alive
connection breaks under it (``ClientSession._retry_connection``, aiohttp issue #10790): a
Zendesk comment is a PUT, and that silent second attempt is exactly the write the sinks
check for before repeating. It is switched off, as aiohttp's own test client does, so every
such break reaches the sink as "may have landed".
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

#: request headers httpx sets that describe a body this transport sends whole
_BODY_FRAMING = frozenset({"transfer-encoding", "content-length"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_connections: int = 100, keepalive_expiry: float = 5.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use, in the loop that uses it (a worker builds its sinks before).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_expiry,
                enable_cleanup_closed=False,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                skip_auto_headers=("Accept-Encoding", "User-Agent"),  # httpx's, or none
            )
            # No second attempt behind the caller's back (see the module's docstring).
            session._retry_connection = False
            self._session = session
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_now()
        body = await request.aread()
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _BODY_FRAMING
        ]
        if body or request.method in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),  # a connection from the pool, connecting included
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
            )
            try:
                content = await response.read()
            finally:
                response.release()
        except Exception as exc:
            raise _as_httpx(exc, request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=httpx.ByteStream(content),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _as_httpx(exc: Exception, request: httpx.Request) -> Exception:
    """The httpx exception of the same kind: not sent, or may have been sent."""
    message = f"{type(exc).__name__}: {exc}"
    # Before anything was sent.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message, request=request)
    # After the request may have left.
    if isinstance(exc, asyncio.TimeoutError):  # SocketTimeoutError, any other timeout
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # an answer that is not HTTP
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientOSError | OSError):  # reset while writing or reading
        return httpx.WriteError(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.ReadError(message, request=request)
    return exc
