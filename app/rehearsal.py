"""A rehearsal of the Intercom ⇄ Zendesk sync on one machine: real Kafka, a worker process,
the Intercom and Zendesk sandboxes serving on loopback and sending signed webhooks to the
worker, and a small file server for attachments.

People act through the platforms' public APIs (the sandbox actors); whoever drives the
rehearsal (the demo, the end-to-end tests, the benchmarks) reads the platforms' state back
through the same APIs. Credentials are generated for the run; nothing is read from or written
to a real account.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiohttp import web

from app.audit_cli import read_trail
from app.errors import DeskstreamError
from app.settings import Settings, load_settings
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import RunningWorker, free_port, run_worker
from connectors.base.links import case_link_id
from connectors.base.sandbox import load_profile, run_sandboxes
from connectors.base.sandbox.faults import FaultProfile
from connectors.base.sandbox.traffic import TrafficStats
from connectors.base.sandbox.traffic.polite import PoliteTransport
from connectors.intercom.sandbox import IntercomSandbox, IntercomSandboxConfig
from connectors.intercom.sandbox.actors import intercom_http
from connectors.zendesk.sandbox import ZendeskSandbox, ZendeskSandboxConfig
from connectors.zendesk.sandbox.actors import api_token_auth, zendesk_http

__all__ = ["SyncStack", "sync_stack"]

T = TypeVar("T")

ZD_INTEGRATION = "deskstream@deskstream-sandbox.test"
ZD_AGENT = "admin@deskstream-sandbox.test"
HUMAN_ADMIN = "991267002"  # Ada Agent, a person; the token's own admin is Deskstream's bot

SYNC_YAML = """
version: 1
connectors: {intercom: intercom, zendesk: zendesk}
flows:
  escalate_to_zendesk: {enabled: true, when: {tags_any: [escalate]}}
  status_round_trip: {enabled: true, reopen: intercom_reopens_zendesk}
taxonomy:
  tags:
    billing: {intercom: billing-issue, zendesk: billing}
profile_fields: {name: both, plan: intercom_to_zendesk}
"""


@dataclass
class SyncStack:
    settings: Settings
    worker: RunningWorker
    intercom: IntercomSandbox
    zendesk: ZendeskSandbox
    ic: httpx.AsyncClient  # Intercom API as the workspace's app (people act with admin ids)
    zd_agent: httpx.AsyncClient  # Zendesk API as a human agent, never the integration user
    files_url: str
    files: dict[str, bytes]
    bot_admin_id: str
    human_admin_id: str = HUMAN_ADMIN

    def link(self, conversation_id: str) -> str:
        return case_link_id("intercom", "intercom", conversation_id)

    def file_url(self, name: str, content: bytes) -> str:
        self.files[name] = content
        return f"{self.files_url}/{name}"

    async def ticket_for(self, conversation_id: str) -> dict[str, Any] | None:
        response = await self.zd_agent.get(
            "/api/v2/tickets", params={"external_id": self.link(conversation_id)}
        )
        tickets: list[dict[str, Any]] = response.json()["tickets"]
        assert len(tickets) <= 1, f"{len(tickets)} tickets mirror conversation {conversation_id}"
        return tickets[0] if tickets else None

    async def comments(self, ticket_id: int) -> list[dict[str, Any]]:
        response = await self.zd_agent.get(f"/api/v2/tickets/{ticket_id}/comments")
        comments: list[dict[str, Any]] = response.json()["comments"]
        return comments

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = await self.ic.get(f"/conversations/{conversation_id}")
        conversation: dict[str, Any] = response.json()
        return conversation

    async def zendesk_users(self, email: str) -> list[dict[str, Any]]:
        response = await self.zd_agent.get(
            "/api/v2/users/search", params={"query": f"email:{email}"}
        )
        users: list[dict[str, Any]] = response.json()["users"]
        return users

    async def eventually(
        self, probe: Callable[[], Awaitable[T | None]], what: str, within: float = 90.0
    ) -> T:
        """Poll until ``probe`` returns something truthy; a clear failure otherwise."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = await probe()
            if found:
                return found
            await asyncio.sleep(0.5)
        raise DeskstreamError(
            f"not within {within:.0f} s: {what}; the worker log ({self.worker.log}) ends with:\n"
            f"{self.worker.log_tail()}"
        )

    async def trail(self, link_id: str) -> str:
        """The link's audit trail, as `deskstream audit trace` prints it (for failure messages)."""
        records = await read_trail(self.settings, link_id, None)
        return "\n".join(f"  {r.stage:8} {r.decision:28} {r.reason}" for r in records)

    async def settle(self, seconds: float = 4.0) -> None:
        """Give late webhooks, retries and echoes time to arrive before counting."""
        await asyncio.sleep(seconds)


def _polite(platform: str) -> httpx.AsyncBaseTransport:
    """People's clients retry 429s and 5xx like any well-behaved client (fault runs)."""
    return PoliteTransport(
        httpx.AsyncHTTPTransport(),
        platform=platform,
        stats=TrafficStats(),
        attempts=30,  # a person tries again and again; they do not give up on a 429 burst
        backoff_s=0.5,
    )


async def _serve_files(files: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/files"


@asynccontextmanager
async def sync_stack(
    bootstrap: str,
    folder: Path,
    *,
    faults: str | FaultProfile = "none",
    seed: int = 1,
    partitions: int = 4,
    name: str = "rehearsal",
) -> AsyncIterator[SyncStack]:
    """``name`` prefixes this run's app id and topics (``<name>-<run>.events``, ...)."""
    run = uuid.uuid4().hex[:8]
    port = free_port()
    target = f"http://127.0.0.1:{port}/webhooks/{{platform}}"
    profile = load_profile(faults) if isinstance(faults, str) else faults
    # Fresh credentials for every rehearsal: the sandboxes accept exactly these, the worker
    # gets them through its environment, and nothing fixed lives in the code.
    ic_token, ic_secret, zd_token, zd_secret = (secrets.token_urlsafe(24) for _ in range(4))
    intercom = IntercomSandbox.create(
        seed=seed,
        faults=profile,
        webhook_target=target,
        webhook_concurrency=4,
        config=IntercomSandboxConfig(
            access_tokens=(ic_token,),
            client_secret=ic_secret,
            custom_attributes={"contact": {"plan": "string"}, "conversation": {}},
        ),
    )
    zendesk = ZendeskSandbox.create(
        seed=seed,
        faults=profile,
        webhook_target=target,
        webhook_concurrency=4,
        config=ZendeskSandboxConfig(api_tokens=(zd_token,), webhook_secret=zd_secret),
    )
    files: dict[str, bytes] = {}
    file_runner, files_url = await _serve_files(files)
    try:
        async with run_sandboxes([intercom, zendesk]) as running:
            ic_url, zd_url = running.url("intercom"), running.url("zendesk")
            async with (
                intercom_http(ic_url, ic_token, transport=_polite("intercom")) as ic,
                zendesk_http(
                    zd_url, api_token_auth(ZD_AGENT, zd_token), transport=_polite("zendesk")
                ) as zd_agent,
                zendesk_http(
                    zd_url, api_token_auth(ZD_INTEGRATION, zd_token), transport=_polite("zendesk")
                ) as zd_integration,
            ):
                bot_admin = str((await ic.get("/me")).json()["id"])
                integration_user = str(
                    (await zd_integration.get("/api/v2/users/me")).json()["user"]["id"]
                )
                rules = folder / "sync.yaml"
                rules.write_text(SYNC_YAML)
                env = {
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "DESKSTREAM_APP_ID": f"{name}-{run}",
                    "DESKSTREAM_TOPIC_PREFIX": f"{name}-{run}",
                    "DESKSTREAM_PARTITIONS": str(partitions),
                    "DESKSTREAM_REPLICATION_FACTOR": "1",
                    "DESKSTREAM_STATE_DIR": str(folder),
                    "DESKSTREAM_SYNC_CONFIG": str(rules),
                    "DESKSTREAM_SINK_MAX_BACKOFF_SECONDS": "5",
                    "DESKSTREAM_CONNECTORS__intercom__PLATFORM": "intercom",
                    "DESKSTREAM_CONNECTORS__intercom__SECRET": ic_secret,
                    "DESKSTREAM_CONNECTORS__intercom__API_BASE_URL": ic_url,
                    "DESKSTREAM_CONNECTORS__intercom__API_TOKEN": ic_token,
                    "DESKSTREAM_CONNECTORS__intercom__SERVICE_ACCOUNT_ID": bot_admin,
                    "DESKSTREAM_CONNECTORS__zendesk__PLATFORM": "zendesk",
                    "DESKSTREAM_CONNECTORS__zendesk__SECRET": zd_secret,
                    "DESKSTREAM_CONNECTORS__zendesk__API_BASE_URL": zd_url,
                    "DESKSTREAM_CONNECTORS__zendesk__API_USER": ZD_INTEGRATION,
                    "DESKSTREAM_CONNECTORS__zendesk__API_TOKEN": zd_token,
                    "DESKSTREAM_CONNECTORS__zendesk__SERVICE_ACCOUNT_ID": integration_user,
                }
                settings = load_settings(
                    kafka_bootstrap_servers=bootstrap,
                    app_id=env["DESKSTREAM_APP_ID"],
                    topic_prefix=env["DESKSTREAM_TOPIC_PREFIX"],
                    partitions=partitions,
                    replication_factor=1,
                )
                await ensure_topics(bootstrap, topic_specs(settings))
                with ExitStack() as exits:
                    # run_worker blocks while it waits for /ready: keep the sandboxes serving.
                    worker = await asyncio.to_thread(
                        exits.enter_context, run_worker(env, port=port, log=folder / "worker.log")
                    )
                    try:
                        yield SyncStack(
                            settings=settings,
                            worker=worker,
                            intercom=intercom,
                            zendesk=zendesk,
                            ic=ic,
                            zd_agent=zd_agent,
                            files_url=files_url,
                            files=files,
                            bot_admin_id=bot_admin,
                        )
                    finally:
                        await asyncio.to_thread(exits.close)
    finally:
        await file_runner.cleanup()
