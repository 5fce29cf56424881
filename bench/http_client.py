"""The sinks' HTTP cost: CPU per API call of the shared client, by transport.

    .venv/bin/python -m bench.http_client [--calls 2000] [--concurrency 8] [--rounds 3]

The Intercom sandbox runs in its own process; this one runs only the client side, so its CPU
time over a run, divided by the calls, is what a call costs a worker. Each call goes through
``connectors.intercom.client.IntercomClient`` (``connectors.base.http.ApiClient``: budget,
call count, classifier, rate headers) and reads the JSON answer, as a sink does: 60 % GET
/contacts/{id}, 20 % PUT /contacts/{id}, 20 % POST /contacts/search, ``--concurrency`` at a
time (a sink's lanes). Variants:

- httpx as the connectors built it before issue 11 (httpcore, h11, anyio underneath);
- httpx with a larger keep-alive pool;
- httpx over ``connectors.base.aiohttp_transport.AiohttpTransport``;
- ``connectors.base.http.platform_http``, what they build now: that, keeping no cookies;
- aiohttp alone, without httpx or the client (the floor: the library's own cost).

Then the sinks' retry wrapper around a call that succeeds at once (no HTTP: the wrapper's
own CPU), as it was (tenacity built for every call) and as ``call_with_retries`` is now.

HTTP/2 is not measured: the sandboxes (aiohttp servers) speak HTTP/1.1, and httpx's HTTP/2
needs the ``h2`` package and TLS to negotiate it with a platform.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from pydantic import SecretStr

from bench.figures import at_most, row
from bench.sandbox_throughput import TOKEN, SandboxProcess
from connectors.base.aiohttp_transport import AiohttpTransport
from connectors.base.http import platform_http
from connectors.base.ratelimit import RateBudget
from connectors.base.retry import RetryPolicy, call_with_retries
from connectors.intercom.client import IntercomClient

TARGET_CPU_MS_PER_CALL = 0.5
TIMEOUT = httpx.Timeout(15.0, connect=5.0)

Call = Callable[[str, str, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Figures:
    cpu_ms_per_call: float
    calls_per_s: float


def _plan(n: int, contacts: list[str]) -> tuple[str, str, Any]:
    contact = contacts[n % len(contacts)]
    pick = n % 10
    if pick < 6:
        return "GET", f"/contacts/{contact}", None
    if pick < 8:
        return "PUT", f"/contacts/{contact}", {"name": f"name {n}"}
    query = {"field": "email", "operator": "=", "value": f"h{n % len(contacts)}@bench.example"}
    return "POST", "/contacts/search", {"query": query}


async def _run(call: Call, calls: int, concurrency: int, contacts: list[str]) -> Figures:
    for n in range(concurrency * 4):  # connections open, code warm
        await call(*_plan(n, contacts))
    numbers = iter(range(calls))

    async def lane() -> None:
        for n in numbers:
            await call(*_plan(n, contacts))

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Figures(1000 * cpu / calls, calls / elapsed)


def _client(http: httpx.AsyncClient) -> IntercomClient:
    return IntercomClient(http, token=lambda: SecretStr(TOKEN), budget=RateBudget(10_000_000, 10.0))


async def _through_client(
    http: httpx.AsyncClient, calls: int, concurrency: int, contacts: list[str]
) -> Figures:
    client = _client(http)

    async def call(method: str, path: str, body: Any) -> Any:
        response = await client.request(method, path, json=body)
        return response.json()

    try:
        return await _run(call, calls, concurrency, contacts)
    finally:
        await client.aclose()


async def _aiohttp_alone(url: str, calls: int, concurrency: int, contacts: list[str]) -> Figures:
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call(method: str, path: str, body: Any) -> Any:
            async with session.request(method, url + path, json=body) as response:
                return await response.json()

        return await _run(call, calls, concurrency, contacts)


async def _seed(url: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
    ids: list[str] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(count):
            body = {"email": f"h{n}@bench.example"}
            async with session.post(f"{url}/contacts", json=body) as response:
                ids.append((await response.json())["id"])
    return ids


async def measure(calls: int, concurrency: int, rounds: int) -> dict[str, Figures]:
    """Each variant ``rounds`` times, taking turns; the best round of each (the machine is
    shared: a round that other work slowed down says less about the client)."""
    with SandboxProcess(None, 1) as url:
        contacts = await _seed(url, 100)
        pool = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        variants: dict[str, Callable[[], Awaitable[Figures]]] = {
            "httpx (before)": lambda: _through_client(
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT), calls, concurrency, contacts
            ),
            "httpx, larger pool": lambda: _through_client(
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=pool),
                calls,
                concurrency,
                contacts,
            ),
            "httpx over aiohttp": lambda: _through_client(
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT, transport=AiohttpTransport()),
                calls,
                concurrency,
                contacts,
            ),
            "platform_http (now)": lambda: _through_client(
                platform_http(TIMEOUT, base_url=url), calls, concurrency, contacts
            ),
            "aiohttp alone (floor)": lambda: _aiohttp_alone(url, calls, concurrency, contacts),
        }
        best: dict[str, Figures] = {}
        for _ in range(rounds):
            for name, run in variants.items():
                found = await run()
                if name not in best or found.cpu_ms_per_call < best[name].cpu_ms_per_call:
                    best[name] = found
        return best


async def _tenacity_every_call(call: Callable[[], Awaitable[Any]], policy: RetryPolicy) -> Any:
    """``call_with_retries`` before the first attempt went outside tenacity."""
    async for attempt in policy.retrying():
        with attempt:
            return await call()


async def retry_wrapper_us(calls: int, rounds: int) -> dict[str, float]:
    """CPU µs per successful call of each retry wrapper, best of ``rounds`` taking turns."""

    async def succeed() -> None:
        return None

    policy = RetryPolicy()
    wrappers = {
        "retry wrapper, before": _tenacity_every_call,
        "retry wrapper, now": call_with_retries,
    }
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, wrapper in wrappers.items():
            started = time.process_time()
            for _ in range(calls):
                await wrapper(succeed, policy)
            spent = (time.process_time() - started) / calls * 1e6
            best[name] = min(spent, best.get(name, spent))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.calls, args.concurrency, args.rounds))
    print(
        f"{args.calls} calls per variant and round, {args.concurrency} at a time, best of "
        f"{args.rounds} rounds taking turns, Intercom sandbox"
    )
    print(row("client CPU per API call, ms", "figure", "target", "ratio"))
    for name, found in figures.items():
        ratio = at_most(found.cpu_ms_per_call, TARGET_CPU_MS_PER_CALL)
        print(row(f"{name}", f"{found.cpu_ms_per_call:.3f}", TARGET_CPU_MS_PER_CALL, ratio))
    for name, found in figures.items():
        print(row(f"{name}, calls/s", f"{found.calls_per_s:.0f}", "", None))
    print("(ratio > 1 meets the target: target/figure)")
    print(row("sinks' retry wrapper, µs per call", "figure", "", None))
    for name, spent in asyncio.run(retry_wrapper_us(20 * args.calls, args.rounds)).items():
        print(row(name, f"{spent:.1f}", "", None))


if __name__ == "__main__":
    main()
