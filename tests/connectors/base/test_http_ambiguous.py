"""The HTTP core tells a request that never left from one whose answer was lost, against a
real sandbox applying ambiguous writes (no mock transport: the failures are real sockets),
on httpx's own transport and on the aiohttp one the connectors use."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.base.aiohttp_transport import AiohttpTransport
from connectors.base.http import AmbiguousAPIError, ApiClient
from connectors.base.ratelimit import RateBudget, RateHeaders
from sandboxes.base import ManualClock, run_sandboxes
from schemas.errors import RetriableAPIError
from tests.sandboxes.base.conftest import NotesSandbox


@pytest.fixture(params=["httpcore", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(url: str, transport: str, *, timeout: float = 5.0) -> ApiClient:
    wire = AiohttpTransport() if transport == "aiohttp" else None
    return ApiClient(
        httpx.AsyncClient(base_url=url, timeout=timeout, transport=wire),
        platform="notes",
        budget=RateBudget(1000, 1.0),
        classify=lambda response: None,
        rate_headers=lambda response: RateHeaders(),
    )


@pytest.fixture
async def notes() -> AsyncIterator[tuple[NotesSandbox, str]]:
    sandbox = NotesSandbox.create(seed=3, clock=ManualClock())
    async with run_sandboxes([sandbox]) as running:
        yield sandbox, running.url("notes")


@pytest.mark.parametrize(
    ("mode", "cause"),
    [("reset", httpx.RemoteProtocolError), ("timeout", httpx.ReadTimeout)],
)
async def test_a_lost_answer_is_ambiguous(
    notes: tuple[NotesSandbox, str], transport: str, mode: str, cause: type[Exception]
) -> None:
    sandbox, url = notes
    client = _client(url, transport, timeout=0.3)
    profile = {"ambiguous_write_rate": 1.0, "ambiguous_modes": [mode], "ambiguous_delay_s": 30}
    await client.request("PUT", "/_sandbox/faults", json=profile)
    with pytest.raises(AmbiguousAPIError, match="may have applied it") as raised:
        await client.request("POST", "/notes", json={"text": "landed"})
    assert isinstance(raised.value.__cause__, cause)
    assert sandbox.notes == ["landed"]
    await client.aclose()


async def test_a_request_that_never_left_is_retriable_not_ambiguous(transport: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}", transport)
    with pytest.raises(RetriableAPIError, match="was not sent") as raised:
        await client.request("POST", "/notes", json={"text": "never"})
    assert not isinstance(raised.value, AmbiguousAPIError)
    await client.aclose()


async def test_a_put_on_a_broken_kept_alive_connection_is_ambiguous_and_sent_once(
    transport: str,
) -> None:
    """A server that read the request and closed the connection may have applied it (a
    Zendesk comment is a PUT): the sink must hear so, and the request must not go out a
    second time behind its back, as aiohttp would do on its own for a PUT."""
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            requests.append(head.split(b" ")[0] + b" " + await reader.readexactly(length))
            if len(requests) == 2:  # applied, then the connection is gone without an answer
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}", transport)
    try:
        await client.request("PUT", "/tickets/1", json={"comment": "first"})
        with pytest.raises(AmbiguousAPIError, match="may have applied it"):
            await client.request("PUT", "/tickets/1", json={"comment": "second"})
        await asyncio.sleep(0.1)  # time for a second attempt, were one made
        assert requests == [
            b'PUT {"comment":"first"}',
            b'PUT {"comment":"second"}',
        ]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
