"""Fixtures: an Intercom sandbox on an ephemeral loopback port, a real webhook receiver,
and the official ``python-intercom`` async client pointed at the sandbox."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from sandboxes.base import (
    LoopbackReceiver,
    ManualClock,
    SandboxContext,
    WebhookDispatcher,
    load_profile,
    run_sandboxes,
)
from sandboxes.intercom import IntercomSandbox, IntercomSandboxConfig

TOKEN = "test-intercom-token"
SECRET = "test-client-secret"


@dataclass
class IntercomEnv:
    sandbox: IntercomSandbox
    url: str
    http: httpx.AsyncClient
    receiver: LoopbackReceiver
    clock: ManualClock

    async def drain(self) -> None:
        assert self.sandbox.context.webhooks is not None
        await self.sandbox.context.webhooks.drain()


SandboxFactory = Callable[..., IntercomSandbox]


def make_sandbox(
    *, clock: ManualClock, webhook_url: str | None, seed: int = 7, **config: object
) -> IntercomSandbox:
    settings = IntercomSandboxConfig.model_validate(
        {"access_tokens": (TOKEN,), "client_secret": SECRET, **config}
    )
    context = SandboxContext(clock=clock, rng=random.Random(seed), seed=seed)
    if webhook_url is not None:
        context.webhooks = WebhookDispatcher(
            webhook_url,
            faults=load_profile("none"),
            rng=context.derive_rng("webhooks"),
            clock=clock,
            retry_policy=IntercomSandbox.webhook_retry_policy,
        )
    return IntercomSandbox(context=context, config=settings)


@pytest.fixture
async def receiver() -> AsyncIterator[LoopbackReceiver]:
    async with LoopbackReceiver() as rx:
        yield rx


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def intercom(receiver: LoopbackReceiver, clock: ManualClock) -> AsyncIterator[IntercomEnv]:
    sandbox = make_sandbox(clock=clock, webhook_url=f"{receiver.url}/webhooks/intercom")
    async with run_sandboxes([sandbox]) as running:
        url = running.url("intercom")
        headers = {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:
            yield IntercomEnv(sandbox, url, http, receiver, clock)
