"""Fixtures: a Zendesk sandbox on an ephemeral loopback port with a manual clock, an httpx
client authenticated as the integration user, and a real loopback webhook receiver."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base.settings import ConnectorSettings
from sandboxes.base import (
    LoopbackReceiver,
    ManualClock,
    SandboxContext,
    WebhookDispatcher,
    load_profile,
    run_sandboxes,
)
from sandboxes.zendesk import ZendeskSandbox, ZendeskSandboxConfig, basic_header

SECRET = "test-zendesk-webhook-secret"
TOKEN = "test-api-token"
EMAIL = "deskstream@deskstream-sandbox.test"


@dataclass
class ZendeskEnv:
    sandbox: ZendeskSandbox
    url: str
    http: httpx.AsyncClient
    clock: ManualClock
    receiver: LoopbackReceiver | None

    async def drain(self) -> None:
        if self.sandbox.context.webhooks is not None:
            await self.sandbox.context.webhooks.drain()

    def connector_settings(self) -> ConnectorSettings:
        """What a Zendesk connector of this sandbox runs with: the integration user's token."""
        return ConnectorSettings(
            platform="zendesk",
            api_base_url=self.url,
            api_user=EMAIL,
            api_token=SecretStr(TOKEN),
            service_account_id=str(self.sandbox.core.integration_user.id),
            secret=SecretStr(SECRET),
        )

    async def create_ticket(self, **ticket: Any) -> dict[str, Any]:
        body = {"subject": "Printer on fire", "comment": {"body": "It smokes."}, **ticket}
        response = await self.http.post("/api/v2/tickets", json={"ticket": body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()["ticket"]
        return created


def make_sandbox(
    *, clock: ManualClock, webhook_url: str | None = None, seed: int = 7, **config: Any
) -> ZendeskSandbox:
    settings = ZendeskSandboxConfig.model_validate(
        {"api_tokens": (TOKEN,), "webhook_secret": SECRET, **config}
    )
    context = SandboxContext(clock=clock, rng=random.Random(seed), seed=seed)
    if webhook_url is not None:
        context.webhooks = WebhookDispatcher(
            webhook_url,
            faults=load_profile("none"),
            rng=context.derive_rng("webhooks"),
            clock=clock,
            retry_policy=ZendeskSandbox.webhook_retry_policy,
        )
    return ZendeskSandbox(context=context, config=settings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def receiver() -> AsyncIterator[LoopbackReceiver]:
    async with LoopbackReceiver() as rx:
        yield rx


@asynccontextmanager
async def serve(
    clock: ManualClock, receiver: LoopbackReceiver | None = None, **config: Any
) -> AsyncIterator[ZendeskEnv]:
    webhook_url = f"{receiver.url}/webhooks/zendesk" if receiver else None
    sandbox = make_sandbox(clock=clock, webhook_url=webhook_url, **config)
    async with run_sandboxes([sandbox]) as running:
        url = running.url("zendesk")
        headers = {"Authorization": basic_header(EMAIL, TOKEN)}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            yield ZendeskEnv(sandbox, url, http, clock, receiver)


@pytest.fixture
async def zendesk(clock: ManualClock) -> AsyncIterator[ZendeskEnv]:
    async with serve(clock) as env:
        yield env


@pytest.fixture
async def zendesk_hooks(
    clock: ManualClock, receiver: LoopbackReceiver
) -> AsyncIterator[ZendeskEnv]:
    async with serve(clock, receiver) as env:
        yield env
