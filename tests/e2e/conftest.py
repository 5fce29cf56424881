"""One running stack per test module: starting Kafka topics, a worker and the sandboxes costs
seconds, and every test works with its own customers and conversations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.rehearsal import SyncStack, sync_stack


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SyncStack]:
    async with sync_stack(kafka_bootstrap_servers, tmp_path_factory.mktemp("sync")) as running:
        yield running
