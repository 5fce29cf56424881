"""Fixtures for the Zendesk Conversations sandbox tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sandboxes.zendesk_conversations.harness import Harness, WebhookReceiver, serve_sandbox

REPO_ROOT = Path(__file__).resolve().parents[3]
SPEC_NAME = "sunshine-conversations-openapi.yaml"


def specs_dir() -> Path:
    return Path(os.environ.get("DESKSTREAM_SPECS_DIR", REPO_ROOT.parent / "shared" / "specs"))


@pytest.fixture
async def sunshine() -> AsyncIterator[Harness]:
    """A sandbox without a webhook target."""
    async with serve_sandbox() as harness:
        yield harness


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver().running() as running:
        yield running


@pytest.fixture
async def hooked(receiver: WebhookReceiver) -> AsyncIterator[Harness]:
    """A sandbox whose webhook points at the loopback ``receiver``."""
    async with serve_sandbox(webhook_target=receiver.url) as harness:
        yield harness


@pytest.fixture(scope="session")
def spec_dict() -> dict[str, Any]:
    """The official Sunshine Conversations OpenAPI document (skips when it is absent)."""
    path = specs_dir() / SPEC_NAME
    if not path.is_file():
        pytest.skip(f"official spec not found at {path} (set DESKSTREAM_SPECS_DIR)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    assert isinstance(document, dict)
    return document
