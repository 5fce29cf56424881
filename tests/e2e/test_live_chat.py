"""The live chat through real Kafka, a worker process and two Zendesk Conversations sandboxes
(two workspaces): a hand-off opens the chat on the desk, messages go both ways in order
(images included), redelivered webhooks and repeated posts change nothing, the agent's release
ends the session on the customer's stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.chat_rehearsal import ChatStack, ClientStream, Workspace, chat_stack, handoff_body
from schemas.codec import encode
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    EntityType,
    Envelope,
    Op,
    Platform,
    Source,
)
from tests.kafka_records import committed_offsets, read_to_end

pytestmark = pytest.mark.kafka

IMAGE = "https://files.example/screenshot.png"


@pytest.fixture(scope="module")
async def chat(
    kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ChatStack]:
    async with chat_stack(kafka_bootstrap_servers, tmp_path_factory.mktemp("chat")) as running:
        yield running


def _chat_id() -> str:
    return f"chat-{uuid.uuid4().hex[:10]}"


async def _opened(chat: ChatStack, desk: Workspace, chat_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return await desk.conversation_for(chat_id)

    conversation = await chat.eventually(found, f"a conversation for {chat_id}")
    assert isinstance(conversation, dict)
    return conversation


def _user_texts(conversation: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (m.content["type"], m.content.get("text") or m.content.get("mediaUrl"))
        for m in conversation["messages"]
        if m.author["type"] == "user"
    ]


async def _redeliver_every_webhook(chat: ChatStack, desk: Workspace) -> list[str]:
    """Send every payload the desk sent again, as its retries do (the same bytes).

    Returns the texts of the messages the payloads carried: the desk batches events within a
    window, so how many payloads carry them depends on timing, what they carry does not.
    """
    cfg = desk.sandbox.config
    payloads = list(desk.sandbox.publisher.recent)
    for body in payloads:
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        answer = await chat.client.post(
            f"/webhooks/{desk.connector_id}",
            content=raw,
            headers={"Content-Type": "application/json", "X-API-Key": cfg.webhook_secret},
        )
        assert answer.status_code == 200, answer.text
    return [
        event["payload"]["message"]["content"].get("text", "")
        for body in payloads
        for event in body["events"]
        if event["type"] == "conversation:message"
    ]


async def test_a_chat_session_round_trips_in_order_and_ends_on_release(chat: ChatStack) -> None:
    desk = chat.workspaces["chat_a"]
    chat_id = _chat_id()
    stream = chat.stream("widget", chat_id)
    await chat.hand_off(
        "widget", handoff_body(chat_id, email="ada@example.org", summary="Charged twice")
    )
    await stream.until(lambda s: "started" in s.kinds(), "the session started")
    conversation = await _opened(chat, desk, chat_id)
    assert conversation["messages"][0].content["text"].startswith("Handed over by the AI agent")
    assert desk.sandbox.state.conversations[conversation["id"]].active_id == (
        desk.sandbox.config.agent_workspace_switchboard_integration_id
    )

    # Customer → agent, in order, an image among them; one message posted twice (a client
    # retry with the same id) reaches the desk once.
    sent: list[dict[str, Any]] = [
        {"id": "m1", "text": "My card was charged twice"},
        {"id": "m2", "attachments": [{"url": IMAGE, "content_type": "image/png"}]},
        {"id": "m3", "text": "Order A-1181"},
        {"id": "m3", "text": "Order A-1181"},
    ]
    for body in sent:
        answer = await chat.say("widget", chat_id, body)
        assert answer.status_code == 202, answer.text

    async def forwarded() -> list[tuple[str, str | None]] | None:
        texts = _user_texts(await _opened(chat, desk, chat_id))
        return texts if len(texts) >= 3 else None

    assert await chat.eventually(forwarded, "the customer's messages on the desk") == [
        ("text", "My card was charged twice"),
        ("image", IMAGE),
        ("text", "Order A-1181"),
    ]

    # Agent → customer, in order, an image among them.
    await desk.reply(conversation["id"], {"text": "Hello, I am Sam. Let me look."})
    await desk.reply(conversation["id"], {"type": "image", "mediaUrl": IMAGE, "text": "This one?"})
    await desk.reply(conversation["id"], {"text": "Refund issued."})
    await stream.until(lambda s: s.kinds().count("message") == 3, "the agent's three messages")

    # Every webhook sent again: nothing reaches the customer twice, the desk gets nothing.
    redelivered = await _redeliver_every_webhook(chat, desk)
    assert {"Hello, I am Sam. Let me look.", "This one?", "Refund issued."} <= set(redelivered)
    await desk.release(conversation["id"])
    await stream.until(lambda s: s.kinds()[-1:] == ["ended"], "the end of the session")
    assert stream.task is not None
    await asyncio.wait_for(stream.task, 5)  # the stream closes after the end

    assert stream.kinds() == ["started", "message", "message", "message", "ended"]
    messages = [e for e in stream.events if e["type"] == "message"]
    assert [m["text"] for m in messages] == [
        "Hello, I am Sam. Let me look.",
        "This one?",
        "Refund issued.",
    ]
    assert messages[1]["attachments"] == [
        {"name": "screenshot.png", "content_type": "image/png", "url": IMAGE}
    ]
    assert {m["author"]["kind"] for m in messages} == {"agent"}
    assert "new conversation" in stream.events[-1]["text"]
    assert len(set(stream.ids)) == len(stream.ids)
    assert len(_user_texts(await _opened(chat, desk, chat_id))) == 3

    # Resumable: reconnecting after the first agent message gets exactly the rest.
    resumed = chat.stream("widget", chat_id, last_event_id=stream.ids[1])
    await asyncio.wait_for(resumed.task or asyncio.sleep(0), 20)
    assert resumed.events == stream.events[2:]
    assert resumed.ids == stream.ids[2:]

    # After the end, the customer's messages are not forwarded; the stream says so.
    late = chat.stream("widget", chat_id, last_event_id=stream.ids[-1])
    assert (await chat.say("widget", chat_id, {"id": "m9", "text": "hello?"})).status_code == 202
    await late.until(lambda s: s.kinds() == ["not_forwarded"], "the late message refused")
    assert late.task is not None
    late.task.cancel()
    assert len(_user_texts(await _opened(chat, desk, chat_id))) == 3


async def test_each_workspace_has_its_own_credentials_and_webhook_url(chat: ChatStack) -> None:
    desk_a, desk_b = chat.workspaces["chat_a"], chat.workspaces["chat_b"]
    chat_id = _chat_id()
    stream = chat.stream("widget_b", chat_id)
    await chat.hand_off(
        "widget_b", handoff_body(chat_id, email="bo@example.org", summary="Login fails")
    )
    await stream.until(lambda s: "started" in s.kinds(), "the session started")
    conversation = await _opened(chat, desk_b, chat_id)
    assert await desk_a.conversation_for(chat_id, client="widget_b") is None
    await desk_b.reply(conversation["id"], {"text": "Hi from workspace B"})
    await stream.until(lambda s: "message" in s.kinds(), "workspace B's agent message")
    assert stream.events[-1]["text"] == "Hi from workspace B"
    assert stream.task is not None
    stream.task.cancel()

    # Workspace A's webhook secret is forged at workspace B's URL: refused, nothing stored.
    forged = await chat.client.post(
        "/webhooks/chat_b",
        content=b'{"app":{"id":"x"},"webhook":{"id":"y","version":"v2"},"events":[]}',
        headers={"X-API-Key": desk_a.sandbox.config.webhook_secret},
    )
    assert forged.status_code == 401


async def test_a_chat_is_bound_to_the_client_that_handed_it_off(chat: ChatStack) -> None:
    desk = chat.workspaces["chat_a"]
    chat_id = _chat_id()
    owner = chat.stream("widget", chat_id)
    stranger = chat.stream("widget_b", chat_id)  # another valid client, the same chat id
    await chat.hand_off("widget", handoff_body(chat_id, email="cy@example.org", summary="Hi"))
    await owner.until(lambda s: "started" in s.kinds(), "the session started")
    await _opened(chat, desk, chat_id)

    # The stranger's message reaches a chat of its own, which has no session: not forwarded
    # (the bridge either forwards or says so), and its stream shows nothing of the owner's.
    said = await chat.say("widget_b", chat_id, {"id": "x1", "text": "let me in"})
    assert said.status_code == 202, said.text
    await stranger.until(lambda s: "not_forwarded" in s.kinds(), "the stranger's notice")
    # Read in order from the chat's log: the owner's "started" would come first.
    assert stranger.kinds() == ["not_forwarded"]
    assert _user_texts(await _opened(chat, desk, chat_id)) == []
    for stream in (owner, stranger):
        assert stream.task is not None
        stream.task.cancel()


async def test_the_chat_endpoints_refuse_clients_without_a_key(chat: ChatStack) -> None:
    async with httpx.AsyncClient(base_url=chat.worker.url, timeout=5) as anonymous:
        assert (await anonymous.get("/chat/any/stream")).status_code == 401
        for headers in (
            {"Authorization": f"Bearer {chat.keys['widget']}"},  # no client named
            {"X-Deskstream-Client": "widget", "Authorization": "Bearer not-a-key"},
            # one client's key under another client's name
            {"X-Deskstream-Client": "widget_b", "Authorization": f"Bearer {chat.keys['widget']}"},
            {"X-Deskstream-Client": "chat_a", "Authorization": f"Bearer {chat.keys['widget']}"},
        ):
            refused = await anonymous.post(
                "/chat/any/messages", json={"id": "1", "text": "hi"}, headers=headers
            )
            assert refused.status_code == 401, headers
    bad = await chat.say("widget", "any", {"id": "1", "attachments": [{"url": "ftp://x"}]})
    assert bad.status_code == 400
    assert "attachments[0].url" in bad.json()["error"]


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()  # (its metadata then holds the topic's partitions)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def _case_event(connector_id: str, entity_id: str, platform: Platform) -> Envelope:
    at = datetime.now(UTC)
    return Envelope(
        event_id=f"{connector_id}-{uuid.uuid4().hex}",
        source=Source(
            platform=platform,
            connector_id=connector_id,
            entity_type=EntityType.CASE,
            entity_id=entity_id,
            event_type="case.updated",
            actor=Actor(kind=ActorKind.AGENT),
            occurred_at=at,
        ),
        op=Op.UPDATE,
        data=Case(status=CaseStatus.OPEN),
        ingested_at=at,
    )


async def _write_events(
    bootstrap: str, topic: str, events: list[Envelope], *, partition: int | None = None
) -> list[tuple[int, int]]:
    """Onto the events topic, where normalize writes them (keyed by their record); where
    each went, (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = []
        for event in events:
            source = event.source
            key = f"{source.platform}:{source.connector_id}:case:{source.entity_id}"
            sent.append(
                await producer.send(topic, encode(event), key=key.encode(), partition=partition)
            )
        return [((meta := await ack).partition, meta.offset) for ack in sent]
    finally:
        await producer.stop()


async def _relay_acked_everything(chat: ChatStack, bootstrap: str) -> None:
    """The group's committed offsets reach the end of the events topic: the relay acked all."""
    prefix = chat.chat_topic.rpartition(".")[0]
    events_topic = f"{prefix}.events"

    async def all_acked() -> bool:
        committed = await committed_offsets(bootstrap, prefix, events_topic)
        ends = await _end_offsets(bootstrap, events_topic)
        # (a partition nothing was written to has nothing to commit)
        return bool(ends) and all(committed.get(p, 0) >= end for p, end in ends.items())

    assert await chat.eventually(all_acked, "the relay's offsets committed to the end", 30.0)


async def test_the_relay_passes_over_events_of_no_chat_and_acks_them(
    chat: ChatStack, kafka_bootstrap_servers: str
) -> None:
    # Events of a connector that is no desk, where normalize writes them: the relay reads
    # their source from the front and passes on, acking each; a hand-off behind them still
    # opens its chat, and the group's committed offsets reach the end of the events topic.
    events_topic = chat.chat_topic.rpartition(".")[0] + ".events"
    crm = [_case_event("crm", f"case-{n}", Platform.GENERIC) for n in range(300)]
    await _write_events(kafka_bootstrap_servers, events_topic, crm)

    chat_id = _chat_id()
    stream = chat.stream("widget", chat_id)
    await chat.hand_off("widget", handoff_body(chat_id, email="bo@example.org", summary="Hi"))
    await stream.until(lambda s: "started" in s.kinds(), "the session started")
    await _relay_acked_everything(chat, kafka_bootstrap_servers)


async def test_a_desk_down_holds_only_the_events_that_need_it(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    # Rounds of two attempts at most half a second apart, so that a test sees several.
    short = {"DESKSTREAM_SINK_MAX_ATTEMPTS": "2", "DESKSTREAM_SINK_MAX_BACKOFF_SECONDS": "0.5"}
    async with chat_stack(
        kafka_bootstrap_servers, tmp_path, name="chat-outage", worker_env=short
    ) as chat:
        desk = chat.workspaces["chat_a"]
        down = {"error_rate": 1.0, "error_statuses": [503]}
        assert (await desk.agent.put("/_sandbox/faults", json=down)).status_code == 200

        # An event of the desk about a conversation the bridge has not seen: the relay asks
        # the desk whose chat it is, and the desk answers 503, round after round.
        events_topic = chat.chat_topic.rpartition(".")[0] + ".events"
        unseen = _case_event("chat_a", f"conv-{uuid.uuid4().hex}", Platform.ZENDESK_CONVERSATIONS)
        bootstrap = kafka_bootstrap_servers
        [(partition, waits_at)] = await _write_events(bootstrap, events_topic, [unseen])
        # Behind it on its partition, an event of no chat: taken and passed over at once.
        behind = [_case_event("crm", "case-behind", Platform.GENERIC)]
        await _write_events(bootstrap, events_topic, behind, partition=partition)

        async def refused(at_least: int) -> bool:
            state = (await desk.agent.get("/_sandbox/state")).json()
            return int(state["faults"]["errors"]) >= at_least

        async def waiting(value: float) -> bool:
            text = (await chat.client.get("/metrics")).text
            return f'deskstream_chat_relay_waiting{{connector="chat_a"}} {value}' in text

        await chat.eventually(lambda: waiting(1.0), "the relay says it waits for the desk", 60)
        # Three rounds of attempts, each of which raised out of the relay's batch before:
        # the worker crashed.
        await chat.eventually(lambda: refused(6), "six refused calls", 60)
        assert chat.worker.alive, chat.worker.log_tail()

        async def landed_on(chat_id: str) -> list[int] | None:
            """The events topic's partition the chat's hand-off was normalised onto."""
            records = await read_to_end(bootstrap, events_topic, 4)
            found = [r.partition for r in records if (r.key or b"").endswith(chat_id.encode())]
            return found[:1] or None

        # Meanwhile the other events go on: a hand-off to the other desk opens its chat while
        # the first desk is still down, unless it is on the waiting event's partition, where a
        # chat's events keep their order behind it.
        behind_it: list[tuple[str, ClientStream]] = []
        for _ in range(8):
            chat_id = _chat_id()
            stream = chat.stream("widget_b", chat_id)
            body = handoff_body(chat_id, email="di@example.org", summary="Hi")
            await chat.hand_off("widget_b", body)
            [on] = await chat.eventually(partial(landed_on, chat_id), "the hand-off normalised")
            if on != partition:
                break
            behind_it.append((chat_id, stream))
        else:
            raise AssertionError("eight hand-offs in a row on one partition of four")
        await stream.until(lambda s: "started" in s.kinds(), "the session started", 30.0)
        await _opened(chat, chat.workspaces["chat_b"], chat_id)
        for _, held in behind_it:
            assert "started" not in held.kinds()
        assert await waiting(1.0)  # still waiting for the first desk
        # Nothing committed past the waiting event, whatever was acked behind it.
        prefix = chat.chat_topic.rpartition(".")[0]
        committed = await committed_offsets(kafka_bootstrap_servers, prefix, events_topic)
        assert committed.get(partition, 0) <= waits_at

        # The desk answers again: the event is found to be nobody's chat (404), and
        # everything the relay read is acked.
        assert (await desk.agent.put("/_sandbox/faults", json={"profile": "none"})).is_success
        await chat.eventually(lambda: waiting(0.0), "the relay no longer waits", 30)
        for _, held in behind_it:  # in their turn
            await held.until(lambda s: "started" in s.kinds(), "the session started", 30.0)
        await _relay_acked_everything(chat, kafka_bootstrap_servers)
        assert chat.worker.alive
        assert chat.worker.critical_lines() == []
