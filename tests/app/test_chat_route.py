"""``POST /chat/{chat_id}/messages`` through aiohttp, in process, on the application a worker
with a live chat desk serves: a message body is bounded in size and in time as a webhook's
is, and a refusal that leaves the body unread closes the connection. The producer is never
started, so nothing here reaches Kafka; the accepted path is in tests/e2e/test_live_chat.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web.drivers.aiohttp import Web as AiohttpWeb

import app.web.chat
from app.faust_app import build_app
from app.settings import load_settings

KEY = "chat-client-key"
CLIENT = {"X-Deskstream-Client": "bot", "Authorization": f"Bearer {KEY}"}
LIMIT = 1024


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setattr(app.web.chat, "READ_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(app.web.chat, "MAX_MESSAGE_BYTES", LIMIT)
    desk = {
        "platform": "zendesk_conversations",
        "secret": "desk-secret",
        "api_base_url": "http://127.0.0.1:9",
        "api_user": "desk-user",
        "api_token": "desk-token",
        "service_account_id": "desk-bot",
        "app_id": "desk-app",
    }
    settings = load_settings(
        state_dir=tmp_path,
        kafka_bootstrap_servers="127.0.0.1:9",
        connectors={"desk": desk, "bot": {"platform": "ai_agent", "secret": KEY}},
    )
    web = build_app(settings).app.web
    assert isinstance(web, AiohttpWeb)
    async with TestClient(TestServer(web.web_app)) as test_client:
        yield test_client


async def test_a_message_that_trickles_in_is_refused_408_and_its_connection_closed(
    client: TestClient[Any, Any],
) -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"id": "m1", '
        await asyncio.sleep(3)  # ten times the read timeout set above
        yield b'"text": "hello"}'

    answer = await client.post("/chat/c1/messages", data=trickle(), headers=CLIENT)
    assert answer.status == 408
    assert "did not arrive within 0.3 s" in (await answer.json())["error"]
    assert answer.headers.get("Connection", "").lower() == "close"


async def test_a_message_over_the_limit_is_refused_413(client: TestClient[Any, Any]) -> None:
    body = b'{"id": "m2", "text": "' + b"x" * LIMIT + b'"}'
    answer = await client.post("/chat/c1/messages", data=body, headers=CLIENT)
    assert answer.status == 413
    assert "the message is over 1024 bytes" in (await answer.json())["error"]
    assert answer.headers.get("Connection", "").lower() != "close"  # it all arrived: kept


async def test_an_unknown_client_is_refused_before_its_body_is_read(
    client: TestClient[Any, Any],
) -> None:
    async def never_finished() -> AsyncIterator[bytes]:
        yield b'{"id": "m3", '
        await asyncio.sleep(3)
        yield b"}"

    headers = {**CLIENT, "Authorization": "Bearer wrong"}
    answer = await client.post("/chat/c1/messages", data=never_finished(), headers=headers)
    assert answer.status == 401
    assert answer.headers.get("Connection", "").lower() == "close"  # not drained


async def test_a_refused_stream_keeps_its_connection(client: TestClient[Any, Any]) -> None:
    answer = await client.get("/chat/c1/stream", headers={**CLIENT, "Authorization": "Bearer x"})
    assert answer.status == 401
    assert answer.headers.get("Connection", "").lower() != "close"  # a GET has no body left
