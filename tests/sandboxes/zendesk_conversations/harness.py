"""A Zendesk Conversations sandbox served on a loopback port, and a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web

from sandboxes.base.clock import ManualClock
from sandboxes.base.server import run_sandboxes
from sandboxes.zendesk_conversations import SunshineSandbox, SunshineSandboxConfig

__all__ = ["Harness", "Received", "WebhookReceiver", "serve_sandbox"]

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Received:
    """One webhook POST as the receiver saw it."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event of the payload (Sunshine batches several into one POST)."""
        events = self.json["events"]
        assert isinstance(events, list)
        assert events
        return events


@dataclass
class WebhookReceiver:
    """A loopback HTTP server recording every delivery; answers from ``statuses`` then 200."""

    statuses: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def script(self, statuses: Iterable[int]) -> None:
        self.statuses.extend(statuses)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.statuses.popleft() if self.statuses else 200
        return web.Response(status=status, text="ok")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookReceiver]:
        app = web.Application()
        app.router.add_post("/webhooks/sunshine", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        try:
            await web.SockSite(runner, sock).start()
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/sunshine"
            yield self
        finally:
            await runner.cleanup()
            sock.close()

    def events(self) -> list[dict[str, Any]]:
        """Every event received, across payloads, in delivery order."""
        return [event for received in self.received for event in received.events]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]


@dataclass
class Harness:
    """A running sandbox plus clients for its API (basic auth) and its admin endpoints."""

    sandbox: SunshineSandbox
    url: str
    api: httpx.AsyncClient
    admin: httpx.AsyncClient
    clock: ManualClock

    @property
    def config(self) -> SunshineSandboxConfig:
        return self.sandbox.config

    @property
    def api_root(self) -> str:
        return f"{self.url}/v2/apps/{self.config.app_id}"

    async def drain(self) -> None:
        await _drain(self.sandbox)

    async def create_user(self, external_id: str | None = "user-1", **fields: Any) -> str:
        body = dict(fields)
        if external_id is not None:
            body["externalId"] = external_id
        response = await self.api.post("/users", json=body)
        assert response.status_code == 201, response.text
        user_id = response.json()["user"]["id"]
        assert isinstance(user_id, str)
        return user_id

    async def create_conversation(self, user_id: str, **fields: Any) -> str:
        body = {"type": "personal", "participants": [{"userId": user_id}], **fields}
        response = await self.api.post("/conversations", json=body)
        assert response.status_code == 201, response.text
        conversation_id = response.json()["conversation"]["id"]
        assert isinstance(conversation_id, str)
        return conversation_id

    async def post_text(self, conversation_id: str, text: str, **author: Any) -> dict[str, Any]:
        body = {"author": {"type": "business", **author}, "content": {"type": "text", "text": text}}
        response = await self.api.post(f"/conversations/{conversation_id}/messages", json=body)
        assert response.status_code == 201, response.text
        message = response.json()["messages"][0]
        assert isinstance(message, dict)
        return message

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        conversation = response.json()["conversation"]
        assert isinstance(conversation, dict)
        return conversation


@asynccontextmanager
async def serve_sandbox(
    *,
    webhook_target: str | None = None,
    config: SunshineSandboxConfig | None = None,
    seed: int = 7,
) -> AsyncIterator[Harness]:
    """A sandbox on an ephemeral loopback port with a manual clock (backoffs run instantly).

    Unless ``config`` says otherwise, webhook events are held until ten are waiting or the
    test drains, so which events share a payload does not depend on timing.
    """
    clock = ManualClock(START)
    base = SunshineSandbox.create(seed=seed, webhook_target=webhook_target, clock=clock)
    config = config or SunshineSandboxConfig(webhook_batch_window_s=None)
    sandbox = SunshineSandbox(context=base.context, config=config)
    async with run_sandboxes([sandbox]) as running:
        url = running.url(sandbox.platform)
        cfg = sandbox.config
        async with (
            httpx.AsyncClient(
                base_url=f"{url}/v2/apps/{cfg.app_id}",
                auth=(cfg.key_id, cfg.key_secret),
                timeout=10,
            ) as api,
            httpx.AsyncClient(base_url=url, timeout=10) as admin,
        ):
            yield Harness(sandbox=sandbox, url=url, api=api, admin=admin, clock=clock)
            # Let queued deliveries finish before the server and receiver go away.
            await asyncio.wait_for(asyncio.shield(_drain(sandbox)), timeout=10)


async def _drain(sandbox: SunshineSandbox) -> None:
    await sandbox.flush_webhooks()
    if sandbox.context.webhooks is not None:
        await sandbox.context.webhooks.drain()
