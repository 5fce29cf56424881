"""A loopback webhook receiver for the sandbox's deliveries (the sandbox tests' own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.sandboxes.zendesk_conversations.harness import WebhookReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver().running() as running:
        yield running
