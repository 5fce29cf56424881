"""``POST /handoff`` through a real worker process and a real broker.

The AI client is a connector of platform ``ai_agent`` with two keys (a rotation under way).
Counted, not timed: a hand-off POSTed three times (a client retrying, then resending with a
changed reason) is three stored requests, one answer and one Handoff event; refusals store
nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.rehearsal_handoff import handoff_body as shared_body
from app.topic_admin import ensure_topics
from app.topics import topic_specs
from app.worker_process import free_port, run_worker
from connectors.base.links import case_link_id
from schemas.codec import decode_as
from schemas.models import EntityType, Envelope, Handoff, RawDelivery
from tests.app.test_worker_e2e import Worker, _read, _worker_env

pytestmark = pytest.mark.kafka

NEW_KEY = "hk-new-0f3a9c"
OLD_KEY = "hk-old-77b2e1"


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    folder = tmp_path_factory.mktemp("handoff")
    env, settings = _worker_env(kafka_bootstrap_servers, folder)
    (folder / "keys").write_text(f"{NEW_KEY}\n{OLD_KEY}\n")  # newest first, both accepted
    env["DESKSTREAM_CONNECTORS__widget__PLATFORM"] = "ai_agent"
    env["DESKSTREAM_CONNECTORS__widget__SECRET_FILE"] = str(folder / "keys")
    asyncio.run(ensure_topics(kafka_bootstrap_servers, topic_specs(settings)))
    with run_worker(env, port=free_port(), log=folder / "worker.log") as running:
        yield Worker(
            url=running.url,
            settings=settings,
            bootstrap=kafka_bootstrap_servers,
            log=running.log,
        )


@pytest.fixture
async def client(worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as http:
        yield http


def handoff_body(conversation: str, **changes: Any) -> dict[str, Any]:
    return shared_body(conversation, "ana@example.org", target="zendesk_ticket", **changes)


async def post(
    http: httpx.AsyncClient, body: Any, *, key: str = NEW_KEY, client: str = "widget"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "X-Deskstream-Client": client}
    return await http.post("/handoff", content=json.dumps(body).encode(), headers=headers)


async def test_a_repeated_handoff_is_one_event_with_one_answer(
    worker: Worker, client: httpx.AsyncClient
) -> None:
    conversation = f"conv-{uuid.uuid4().hex[:6]}"
    first = await post(client, handoff_body(conversation))
    retry = await post(client, handoff_body(conversation), key=OLD_KEY)  # rotation: old key too
    changed = await post(client, handoff_body(conversation, reason="changed its mind"))
    assert [r.status_code for r in (first, retry, changed)] == [200, 200, 200]
    assert first.json() == retry.json() == changed.json()
    assert first.json()["conversation_id"] == conversation

    s = worker.settings
    raw = [decode_as(v, RawDelivery) for v in await _read(worker.bootstrap, s.topic("raw"), 3)]
    events = [decode_as(v, Envelope) for v in await _read(worker.bootstrap, s.topic("events"), 1)]
    assert len(raw) == 3
    assert {d.delivery_id for d in raw} == {f"handoff:{conversation}"}
    [event] = events  # the repeats are dropped before the canonical topic
    assert event.event_id == first.json()["handoff_id"]
    assert event.source.entity_type is EntityType.HANDOFF
    assert event.link_id == case_link_id("ai_agent", "widget", conversation)
    handoff = event.data
    assert isinstance(handoff, Handoff)
    assert handoff.reason == "customer asked for a human"  # the first request's content
    assert handoff.target == "zendesk_ticket"
    assert handoff.customer is not None
    assert handoff.customer.emails == ["ana@example.org"]
    assert [line.text for line in handoff.transcript] == [
        "I was charged twice",
        "Let me get you a person.",
    ]
    assert handoff.client_id == "widget"


async def test_refusals_name_the_problem_and_store_nothing(
    worker: Worker, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    conversation = f"refused-{uuid.uuid4().hex[:6]}"
    invalid = handoff_body(conversation, transcript=[{"role": "bot", "text": "x"}], colour="red")
    del invalid["reason"]
    answer = await post(client, invalid)
    assert answer.status_code == 422
    error = answer.json()["error"]
    for field in ("reason", "transcript.0.role", "transcript.0.at", "colour"):
        assert field in error
    wrong_key = await post(client, handoff_body(conversation), key="guess")
    unknown = await post(client, handoff_body(conversation), client="nobody")
    assert (wrong_key.status_code, unknown.status_code) == (401, 401)
    for refused in (wrong_key, unknown):
        assert NEW_KEY not in refused.text
        assert OLD_KEY not in refused.text
    # Unauthenticated callers learn nothing about the body: no field names.
    assert "reason" not in (await post(client, invalid, key="guess")).json()["error"]

    raw = await _read(worker.bootstrap, worker.settings.topic("raw"), 0)
    stored = [decode_as(v, RawDelivery).delivery_id for v in raw]
    assert f"handoff:{conversation}" not in stored
    log = worker.log.read_text()
    assert NEW_KEY not in log
    assert OLD_KEY not in log
