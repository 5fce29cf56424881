"""The HTTP core tells a request that never left from one whose answer was lost, against a
real sandbox applying ambiguous writes (no mock transport: the failures are real sockets)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.base.http import AmbiguousAPIError, ApiClient
from connectors.base.ratelimit import RateBudget, RateHeaders
from sandboxes.base import ManualClock, run_sandboxes
from schemas.errors import RetriableAPIError
from tests.sandboxes.base.conftest import NotesSandbox


def _client(url: str, *, timeout: float = 5.0) -> ApiClient:
    return ApiClient(
        httpx.AsyncClient(base_url=url, timeout=timeout),
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
    notes: tuple[NotesSandbox, str], mode: str, cause: type[Exception]
) -> None:
    sandbox, url = notes
    client = _client(url, timeout=0.3)
    profile = {"ambiguous_write_rate": 1.0, "ambiguous_modes": [mode], "ambiguous_delay_s": 30}
    await client.request("PUT", "/_sandbox/faults", json=profile)
    with pytest.raises(AmbiguousAPIError, match="may have applied it") as raised:
        await client.request("POST", "/notes", json={"text": "landed"})
    assert isinstance(raised.value.__cause__, cause)
    assert sandbox.notes == ["landed"]
    await client.aclose()


async def test_a_request_that_never_left_is_retriable_not_ambiguous() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}")
    with pytest.raises(RetriableAPIError, match="was not sent") as raised:
        await client.request("POST", "/notes", json={"text": "never"})
    assert not isinstance(raised.value, AmbiguousAPIError)
    await client.aclose()
