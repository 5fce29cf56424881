"""Throughput of one platform sandbox (Intercom) against the sandbox design target.

    .venv/bin/python -m bench.sandbox_throughput [--requests 6000] [--webhooks 5000]
                                                 [--concurrency 16] [--senders 4]

The sandbox runs in its own process, as ``deskstream sandbox`` does; the load generator and a
loopback webhook receiver run in this one. Two figures, each against 1,000/s:

1. API: authenticated requests/s over keep-alive connections, a sync-like mix of
   60 % GET /contacts/{id}, 20 % PUT /contacts/{id}, 10 % POST /contacts/search,
   10 % POST /conversations/{id}/reply (every write also builds its notification).
2. Webhooks: signed notification_event deliveries/s the sandbox's dispatcher completes to the
   receiver (HTTP 200 answered) while draining the notifications of ``--webhooks`` contact
   updates, measured from the first to the last delivery.

The rate limit is raised out of the way (the figure is the server's, not Intercom's budget);
the machine's two cores are shared by the sandbox, the load generator and the receiver, so
the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import random
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from sandboxes.base import (
    LoopbackReceiver,
    SandboxContext,
    WebhookDispatcher,
    load_profile,
    run_sandboxes,
)
from sandboxes.intercom import IntercomSandbox, IntercomSandboxConfig

TARGET_PER_S = 1000.0
TOKEN = "bench-token"
ADMIN_ID = "991267002"


def _serve(conn: Connection, webhook_url: str | None, senders: int) -> None:
    """Child process: one Intercom sandbox until the parent closes the pipe."""

    async def main() -> None:
        config = IntercomSandboxConfig(access_tokens=(TOKEN,), rate_limit_per_minute=60_000_000)
        context = SandboxContext(rng=random.Random(1), seed=1)
        if webhook_url:
            context.webhooks = WebhookDispatcher(
                webhook_url,
                faults=load_profile("none"),
                rng=context.derive_rng("webhooks"),
                clock=context.clock,
                retry_policy=IntercomSandbox.webhook_retry_policy,
                concurrency=senders,
            )
        sandbox = IntercomSandbox(context=context, config=config)
        async with run_sandboxes([sandbox]) as running:
            conn.send(running.url("intercom"))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, conn.recv)  # returns when the parent closes

    with contextlib.suppress(EOFError):
        asyncio.run(main())


class SandboxProcess:
    def __init__(self, webhook_url: str | None, senders: int) -> None:
        ctx = mp.get_context("spawn")
        self._parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, webhook_url, senders))

    def __enter__(self) -> str:
        self._process.start()
        url: str = self._parent.recv()
        return url

    def __exit__(self, *exc: object) -> None:
        self._parent.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()


async def _seed(
    http: aiohttp.ClientSession, url: str, contacts: int
) -> tuple[list[str], list[str]]:
    contact_ids, conversation_ids = [], []
    for n in range(contacts):
        async with http.post(f"{url}/contacts", json={"email": f"b{n}@bench.example"}) as r:
            contact_ids.append((await r.json())["id"])
    for contact_id in contact_ids[:50]:
        body = {"from": {"type": "user", "id": contact_id}, "body": "hello"}
        async with http.post(f"{url}/conversations", json=body) as r:
            conversation_ids.append((await r.json())["conversation_id"])
    return contact_ids, conversation_ids


def _request(n: int, contacts: list[str], conversations: list[str]) -> tuple[str, str, Any]:
    pick = n % 10
    contact = contacts[n % len(contacts)]
    if pick < 6:
        return "GET", f"/contacts/{contact}", None
    if pick < 8:
        return "PUT", f"/contacts/{contact}", {"name": f"name {n}"}
    if pick < 9:
        query = {"field": "email", "operator": "=", "value": f"b{n % len(contacts)}@bench.example"}
        return "POST", "/contacts/search", {"query": query}
    reply = {"message_type": "comment", "type": "admin", "admin_id": ADMIN_ID, "body": f"r{n}"}
    return "POST", f"/conversations/{conversations[n % len(conversations)]}/reply", reply


async def _drive(
    url: str, total: int, concurrency: int, make: Any, http: aiohttp.ClientSession
) -> tuple[float, dict[int, int]]:
    counter = iter(range(total))
    statuses: dict[int, int] = {}

    async def worker() -> None:
        for n in counter:
            method, path, body = make(n)
            async with http.request(method, f"{url}{path}", json=body) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, statuses


def _session(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"},
        connector=aiohttp.TCPConnector(limit=concurrency),
    )


async def api_phase(requests: int, concurrency: int) -> dict[str, Any]:
    with SandboxProcess(None, 1) as url:
        async with _session(concurrency) as http:
            contacts, conversations = await _seed(http, url, 200)
            elapsed, statuses = await _drive(
                url, requests, concurrency, lambda n: _request(n, contacts, conversations), http
            )
    return {
        "requests": requests,
        "seconds": elapsed,
        "per_s": requests / elapsed,
        "statuses": statuses,
    }


def _receive(conn: Connection) -> None:
    """Child process: a loopback receiver; answers (count, first, last) arrival times."""

    async def main() -> None:
        async with _TimedReceiver() as receiver:
            conn.send(receiver.url)
            loop = asyncio.get_running_loop()
            while True:
                wanted = await loop.run_in_executor(None, conn.recv)
                await receiver.wait_for(wanted)
                conn.send((receiver.count, receiver.arrivals[0], receiver.arrivals[-1]))

    with contextlib.suppress(EOFError):
        asyncio.run(main())


class _TimedReceiver(LoopbackReceiver):
    """The loopback receiver, also noting when the first and last deliveries arrived."""

    def __init__(self) -> None:
        super().__init__(record=False)
        self.arrivals: list[float] = []

    async def _handle(self, request: Any) -> Any:
        response = await super()._handle(request)
        if not self.arrivals:
            self.arrivals.append(time.perf_counter())
        else:
            self.arrivals[1:] = [time.perf_counter()]
        return response


async def webhook_phase(webhooks: int, concurrency: int, senders: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    receiver = ctx.Process(target=_receive, args=(child,))
    receiver.start()
    loop = asyncio.get_running_loop()
    try:
        receiver_url = parent.recv()
        with SandboxProcess(f"{receiver_url}/webhooks/intercom", senders) as url:
            async with _session(concurrency) as http:
                async with http.post(f"{url}/contacts", json={"email": "w@bench.example"}) as r:
                    contact_id = (await r.json())["id"]
                started = time.perf_counter()
                elapsed_writes, statuses = await _drive(
                    url,
                    webhooks,
                    concurrency,
                    lambda n: ("PUT", f"/contacts/{contact_id}", {"name": f"n{n}"}),
                    http,
                )
                parent.send(webhooks + 1)  # + the contact.user.created notification
                count, first, last = await asyncio.wait_for(
                    loop.run_in_executor(None, parent.recv), timeout=300
                )
    finally:
        parent.close()
        receiver.join(timeout=10)
        if receiver.is_alive():
            receiver.terminate()
    # perf_counter is CLOCK_MONOTONIC on Linux, shared by the processes of this machine.
    return {
        "webhooks": count,
        "senders": senders,
        "write_seconds": elapsed_writes,
        "delivery_seconds": last - first,
        "per_s": (count - 1) / (last - first),
        "end_to_end_per_s": webhooks / (last - started),
        "write_statuses": statuses,
    }


def _line(name: str, value: float) -> str:
    ratio = value / TARGET_PER_S
    return f"{name:<10} {value:>9.0f}/s   target {TARGET_PER_S:.0f}/s   ratio {ratio:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--senders", type=int, default=4, help="webhook sender tasks")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    api = asyncio.run(api_phase(args.requests, args.concurrency))
    hooks = asyncio.run(webhook_phase(args.webhooks, args.concurrency, args.senders))
    if args.json:
        print(json.dumps({"api": api, "webhooks": hooks}))
        return
    print(f"api: {api['requests']} requests in {api['seconds']:.2f}s statuses={api['statuses']}")
    print(
        f"webhooks: {hooks['webhooks']} deliveries in {hooks['delivery_seconds']:.2f}s "
        f"(writes took {hooks['write_seconds']:.2f}s, end to end "
        f"{hooks['end_to_end_per_s']:.0f}/s) senders={hooks['senders']}"
    )
    print(_line("api", api["per_s"]))
    print(_line("webhooks", hooks["per_s"]))


if __name__ == "__main__":
    main()
