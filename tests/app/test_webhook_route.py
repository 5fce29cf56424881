"""``POST /webhooks/{connector_id}`` through aiohttp, in process, on the application the
worker serves (Faust's own aiohttp app, as ``build_app`` makes it). The producer is never
started: what is tested is the HTTP answer around ``WebhookIngest``, whose outcomes have
their own tests (test_ingest.py); the accepted path through a real broker is in
test_worker_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from app.faust_app import Deskstream, build_app
from app.ingest import WebhookIngest
from app.settings import load_settings
from tests.factories import body_of, case_event, signed_headers

SECRET = "whsec-route"


@pytest.fixture
def bundle(tmp_path: Path) -> Deskstream:
    return build_app(
        load_settings(
            state_dir=tmp_path,
            kafka_bootstrap_servers="127.0.0.1:9",
            connectors={"crm": {"platform": "generic", "secret": SECRET}},
            ingest_ack_timeout_seconds=1.0,
        )
    )


@pytest.fixture
async def client(bundle: Deskstream) -> AsyncIterator[TestClient[Any, Any]]:
    web = bundle.app.web
    assert isinstance(web, AiohttpWeb)  # the driver the worker serves
    async with TestClient(TestServer(web.web_app)) as client:
        yield client


def _signed(secret: str, body: bytes) -> dict[str, str]:
    return signed_headers(secret, body, datetime.now(UTC))  # the worker's clock checks it


def _count(bundle: Deskstream, connector: str, outcome: str) -> float:
    labels = {"connector": connector, "outcome": outcome}
    return bundle.metrics.registry.get_sample_value("deskstream_webhooks_total", labels) or 0.0


async def test_a_delivery_kafka_cannot_take_is_a_json_503_the_platform_retries(
    bundle: Deskstream, client: TestClient[Any, Any]
) -> None:
    body = body_of(case_event("42"))
    answer = await client.post("/webhooks/crm", data=body, headers=_signed(SECRET, body))
    assert answer.status == 503
    assert answer.content_type == "application/json"
    assert "platform will retry" in (await answer.json())["error"]
    assert _count(bundle, "crm", "unavailable") == 1


async def test_refusals_answer_in_json_and_only_post_is_routed(
    bundle: Deskstream, client: TestClient[Any, Any]
) -> None:
    body = body_of(case_event("42"))
    forged = await client.post("/webhooks/crm", data=body, headers=_signed("x", body))
    assert forged.status == 401
    assert "nothing was stored" in (await forged.json())["error"]
    unknown = await client.post("/webhooks/nobody", data=body)
    assert unknown.status == 404
    assert "no connector 'nobody'" in (await unknown.json())["error"]
    assert (await client.get("/webhooks/crm")).status == 405
    assert _count(bundle, "crm", "unauthorized") == 1


async def test_a_failure_of_ours_is_counted_and_answered_500_with_what_to_do(
    bundle: Deskstream,
    client: TestClient[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug, with a detail no sender should see")

    monkeypatch.setattr(WebhookIngest, "accept", broken)
    body = body_of(case_event("42"))
    answer = await client.post("/webhooks/crm", data=body, headers=_signed(SECRET, body))
    assert answer.status == 500
    error = (await answer.json())["error"]
    assert "RuntimeError" in error
    assert "platform will retry" in error
    assert "no sender should see" not in error
    assert _count(bundle, "crm", "error") == 1
    logged = [r for r in caplog.records if r.name == "app.web.webhooks"]
    assert [r.getMessage() for r in logged] == ["webhook failed connector=crm error=RuntimeError"]
    assert logged[0].exc_info is not None  # the traceback, for whoever fixes the bug


async def test_a_refusal_closes_the_connection_only_when_the_body_has_not_all_arrived(
    client: TestClient[Any, Any],
) -> None:
    async def never_finished() -> AsyncIterator[bytes]:
        yield b'{"source": '
        await asyncio.sleep(3)  # the 404 comes first: the rest is never read
        yield b"{}}"

    unknown = await client.post("/webhooks/nobody", data=never_finished())
    assert unknown.status == 404
    assert unknown.headers.get("Connection", "").lower() == "close"  # not drained
    body = body_of(case_event("42"))
    forged = await client.post("/webhooks/crm", data=body, headers=_signed("x", body))
    assert forged.status == 401
    assert forged.headers.get("Connection", "").lower() != "close"  # nothing left: kept alive
