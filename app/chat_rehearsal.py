"""A live chat stack for tests, the benchmark and the demo: two Zendesk Conversations
sandboxes (two workspaces, each with its own app, keys and webhook URL), a worker running the
live chat bridge, and two AI clients (``widget`` → workspace ``chat_a``, ``widget_b`` →
``chat_b``) speaking to the worker as the AI agent's chat widget does.

``chat_stack(bootstrap, folder)`` starts it all and yields a ``ChatStack``. The AI side hands
the chat over with ``POST /handoff`` (target ``live_chat``); the customer then writes through
``POST /chat/{id}/messages`` and reads ``GET /chat/{id}/stream``; the human agent works in the
sandbox's agent workspace endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.settings import load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import RunningWorker, free_port, run_worker
from sandboxes.base.server import run_sandboxes
from sandboxes.zendesk_conversations import SunshineSandbox, SunshineSandboxConfig
from streams.chat import chat_key

__all__ = ["ChatStack", "ClientStream", "Workspace", "chat_stack", "handoff_body"]

#: what the sandboxes hold webhook events for: short, so the figures show our latency
BATCH_WINDOW_S = 0.02


def handoff_body(chat_id: str, *, email: str, summary: str, **extra: Any) -> dict[str, Any]:
    """A ``POST /handoff`` body for an AI chat going to a live agent."""
    return {
        "conversation_id": chat_id,
        "customer": {"email": email, "name": extra.pop("name", "Ada Lovelace")},
        "reason": extra.pop("reason", "customer asked for a human"),
        "summary": summary,
        "target": "live_chat",
        "transcript": [
            {"role": "customer", "text": "I was charged twice", "at": datetime.now(UTC).isoformat()}
        ],
        **extra,
    }


@asynccontextmanager
async def _named_timeout(within: float, what: str, seen: Callable[[], str]) -> AsyncIterator[None]:
    """``asyncio.timeout`` whose error names what was awaited and what was there instead: a
    rehearsal's bare ``TimeoutError`` says neither."""
    timeout = asyncio.timeout(within)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if not timeout.expired():
            raise  # a timeout of the body's own, with its own message
        raise TimeoutError(
            f"waited {within:g} s for {what}, in vain ({seen()}); the worker may be slow to "
            "join or recover: look at its log, then run again"
        ) from None


@dataclass
class Workspace:
    """One Conversations app (a Zendesk workspace) and the worker's connector for it."""

    connector_id: str
    sandbox: SunshineSandbox
    url: str
    agent: httpx.AsyncClient
    #: the AI client whose chats the worker's configuration sends here
    client: str

    async def conversation_for(
        self, chat_id: str, *, client: str | None = None
    ) -> dict[str, Any] | None:
        """The conversation of ``client``'s chat ``chat_id`` (the bridge stamps the chat's
        client-scoped key on it); ``client`` defaults to this workspace's own."""
        stamped = chat_key(client or self.client, chat_id)
        for conversation in self.sandbox.state.conversations.values():
            if (conversation.metadata or {}).get("deskstream_chat_id") == stamped:
                return {"id": conversation.id, "messages": conversation.messages}
        return None

    async def reply(self, conversation_id: str, body: dict[str, Any]) -> None:
        path = f"/_sandbox/agent/conversations/{conversation_id}/reply"
        answer = await self.agent.post(path, json={"agentName": "Sam", "agentId": "42", **body})
        answer.raise_for_status()

    async def release(self, conversation_id: str) -> None:
        answer = await self.agent.post(f"/_sandbox/agent/conversations/{conversation_id}/release")
        answer.raise_for_status()


@dataclass
class ClientStream:
    """A chat client reading ``GET /chat/{id}/stream``: every SSE event, in order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def read(self, http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        async with http.stream("GET", path, headers=headers, timeout=None) as response:
            response.raise_for_status()
            event_id: int | None = None
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))
                    self.ids.append(event_id if event_id is not None else -1)
                    self.arrived.set()

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def until(self, predicate: Any, what: str, within: float = 20.0) -> None:
        async with _named_timeout(within, what, lambda: f"the stream had {self.kinds()}"):
            while not predicate(self):
                if self.task is not None and self.task.done():
                    self.task.result()  # raises what ended the stream
                    if not predicate(self):
                        raise AssertionError(f"the stream ended before {what}: {self.kinds()}")
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), 0.5)


@dataclass
class ChatStack:
    worker: RunningWorker
    workspaces: dict[str, Workspace]
    client: httpx.AsyncClient
    keys: dict[str, str]
    chat_topic: str
    streams: list[ClientStream] = field(default_factory=list)

    def auth(self, client: str) -> dict[str, str]:
        return {"X-Deskstream-Client": client, "Authorization": f"Bearer {self.keys[client]}"}

    async def hand_off(self, client: str, body: dict[str, Any]) -> None:
        answer = await self.client.post("/handoff", json=body, headers=self.auth(client))
        if answer.status_code >= 300:
            raise AssertionError(f"POST /handoff answered {answer.status_code}: {answer.text}")

    async def say(self, client: str, chat_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/chat/{chat_id}/messages", json=body, headers=self.auth(client)
        )

    def stream(
        self, client: str, chat_id: str, *, last_event_id: int | None = None
    ) -> ClientStream:
        headers = self.auth(client)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        reader = ClientStream()
        reader.task = asyncio.create_task(
            reader.read(self.client, f"/chat/{chat_id}/stream", headers)
        )
        self.streams.append(reader)
        return reader

    async def close_streams(self) -> None:
        """Stop reading every stream still open (before the worker goes away)."""
        for reader in self.streams:
            if reader.task is not None and not reader.task.done():
                reader.task.cancel()
            if reader.task is not None:
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await reader.task

    async def eventually(self, probe: Any, what: str, within: float = 20.0) -> Any:
        worker = self.worker

        def log() -> str:
            return f"the worker's log, {worker.log}, ends with:\n{worker.log_tail(1500)}"

        async with _named_timeout(within, what, log):
            while True:
                found = await probe()
                if found:
                    return found
                await asyncio.sleep(0.05)


def _config(tag: str) -> SunshineSandboxConfig:
    # Fresh credentials per workspace: each accepts only its own.
    return SunshineSandboxConfig(
        app_id=secrets.token_hex(12),
        key_id=f"app_{secrets.token_hex(12)}",
        key_secret=secrets.token_urlsafe(24),
        integration_key_id=f"int_{secrets.token_hex(12)}",
        integration_key_secret=secrets.token_urlsafe(24),
        integration_name=f"Deskstream ({tag})",
        webhook_secret=secrets.token_urlsafe(24),
        webhook_batch_window_s=BATCH_WINDOW_S,
    )


@asynccontextmanager
async def chat_stack(
    bootstrap: str,
    folder: Path,
    *,
    name: str = "chat",
    partitions: int = 4,
    worker_env: Mapping[str, str] | None = None,
) -> AsyncIterator[ChatStack]:
    """Two workspaces (``chat_a`` for client ``widget``, ``chat_b`` for ``widget_b``) and
    one worker, on topics of their own (``<name>-<run>.*``); ``worker_env`` is more of the
    worker's environment (``DESKSTREAM_*``)."""
    run = uuid.uuid4().hex[:8]
    port = free_port()
    keys = {"widget": secrets.token_urlsafe(24), "widget_b": secrets.token_urlsafe(24)}
    prefix = f"{name}-{run}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DESKSTREAM_APP_ID": prefix,
        "DESKSTREAM_TOPIC_PREFIX": prefix,
        "DESKSTREAM_PARTITIONS": str(partitions),
        "DESKSTREAM_REPLICATION_FACTOR": "1",
        "DESKSTREAM_STATE_DIR": str(folder / "worker"),
        "DESKSTREAM_WEBHOOK_QUIET_SECONDS": "0",
        "DESKSTREAM_CHAT__WORKSPACES__widget_b": "chat_b",
        "DESKSTREAM_CHAT__WORKSPACES__widget": "chat_a",
        **(worker_env or {}),
    }
    for ai_client, key in keys.items():  # the AI clients, as POST /handoff knows them
        env[f"DESKSTREAM_CONNECTORS__{ai_client}__PLATFORM"] = "ai_agent"
        env[f"DESKSTREAM_CONNECTORS__{ai_client}__SECRET"] = key
    async with AsyncExitStack() as stack:
        workspaces: dict[str, Workspace] = {}
        for connector_id, ai_client in (("chat_a", "widget"), ("chat_b", "widget_b")):
            sandbox = SunshineSandbox.create(
                seed=len(workspaces) + 1,
                webhook_target=f"http://127.0.0.1:{port}/webhooks/{connector_id}",
                config=_config(connector_id),
            )
            running = await stack.enter_async_context(run_sandboxes([sandbox]))
            url = running.url(sandbox.platform)
            agent = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=10))
            workspaces[connector_id] = Workspace(connector_id, sandbox, url, agent, ai_client)
            cfg, conn = sandbox.config, sandbox.worker_connector()
            assert conn.api_token is not None
            assert conn.secret is not None
            prefix_env = f"DESKSTREAM_CONNECTORS__{connector_id}__"
            env |= {
                f"{prefix_env}PLATFORM": "zendesk_conversations",
                f"{prefix_env}SECRET": conn.secret.get_secret_value(),
                f"{prefix_env}API_BASE_URL": url,
                f"{prefix_env}API_USER": str(conn.api_user),
                f"{prefix_env}API_TOKEN": conn.api_token.get_secret_value(),
                f"{prefix_env}SERVICE_ACCOUNT_ID": str(conn.service_account_id),
                f"{prefix_env}APP_ID": cfg.app_id,
            }
        settings = load_settings(
            kafka_bootstrap_servers=bootstrap,
            app_id=prefix,
            topic_prefix=prefix,
            partitions=partitions,
            replication_factor=1,
        )
        await ensure_topics(bootstrap, topic_specs(settings))
        worker = await asyncio.to_thread(
            stack.enter_context, run_worker(env, port=port, log=folder / "worker.log")
        )
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=worker.url, timeout=10))
        live = ChatStack(
            worker=worker,
            workspaces=workspaces,
            client=client,
            keys=keys,
            chat_topic=settings.topic("chat"),
        )
        try:
            yield live
        finally:
            await live.close_streams()
