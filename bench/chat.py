"""Live chat message latency, both ways, through Kafka, a worker and the Conversations sandbox.

customer → agent: from the chat client's ``POST /chat/{id}/messages`` to the message in the
desk's conversation (the sandbox serves in this process: its state is read directly).
agent → customer: from the agent's reply in the desk to the event on the client's SSE stream
(this includes the sandbox's webhook batching hold, ``app.chat_rehearsal.BATCH_WINDOW_S``).

One message at a time (latency, not throughput), after a few warm-up messages. Kafka: the
local stack (started if needed) or ``KAFKA_BOOTSTRAP_SERVERS``.

    PYTHONPATH=. python -m bench.chat --messages 200
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from app.chat_rehearsal import BATCH_WINDOW_S, ChatStack, chat_stack, handoff_body
from app.kafka_local.stack import start_cluster
from app.settings import load_settings
from bench.figures import at_most, percentile, row

#: DESIGN.md, "End to end": webhook received → target API call started, p50 and p99 (ms)
TARGET_P50_MS = 100
TARGET_P99_MS = 500
WARM_UP = 5
_POLL_S = 0.001


async def _customer_to_agent(chat: ChatStack, chat_id: str, count: int, phase: str) -> list[float]:
    desk = chat.workspaces["chat_a"]
    found = await desk.conversation_for(chat_id)
    assert found is not None
    conversation = desk.sandbox.state.conversations[found["id"]]
    latencies: list[float] = []
    for n in range(count):
        before = len(conversation.messages)
        started = time.perf_counter()
        body = {"id": f"{phase}-{n}", "text": f"customer {n}"}  # a new id: a copy is dropped
        answer = await chat.say("widget", chat_id, body)
        answer.raise_for_status()
        async with asyncio.timeout(30):
            while len(conversation.messages) == before:  # noqa: ASYNC110 - no hook to wait on
                await asyncio.sleep(_POLL_S)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _agent_to_customer(chat: ChatStack, chat_id: str, count: int) -> list[float]:
    desk = chat.workspaces["chat_a"]
    found = await desk.conversation_for(chat_id)
    assert found is not None
    stream = chat.stream("widget", chat_id, last_event_id=None)
    await stream.until(lambda s: "started" in s.kinds(), "the stream caught up")
    latencies: list[float] = []
    for n in range(count):
        seen = len(stream.events)
        started = time.perf_counter()
        await desk.reply(found["id"], {"text": f"agent {n}"})
        await stream.until(lambda s, seen=seen: len(s.events) > seen, f"agent message {n}")
        latencies.append((time.perf_counter() - started) * 1000)
    if stream.task is not None:
        stream.task.cancel()
    return latencies


async def _run(bootstrap: str, folder: Path, messages: int) -> tuple[list[float], list[float]]:
    async with chat_stack(bootstrap, folder, name="bench-chat") as chat:
        chat_id = f"bench-{uuid.uuid4().hex[:8]}"
        stream = chat.stream("widget", chat_id)
        await chat.hand_off(
            "widget", handoff_body(chat_id, email="bench@example.org", summary="bench")
        )
        await stream.until(lambda s: "started" in s.kinds(), "the session started")
        if stream.task is not None:
            stream.task.cancel()
        await _customer_to_agent(chat, chat_id, WARM_UP, "warm-up")
        inbound = await _customer_to_agent(chat, chat_id, messages, "measured")
        await _agent_to_customer(chat, chat_id, WARM_UP)
        outbound = await _agent_to_customer(chat, chat_id, messages)
        return inbound, outbound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    cluster = start_cluster(load_settings(), progress=lambda m: None)
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as folder:
        inbound, outbound = asyncio.run(
            _run(cluster.bootstrap_servers, Path(folder), args.messages)
        )
    print(
        f"kafka {cluster.bootstrap_servers}, one worker, {os.cpu_count()} cores shared with the "
        f"sandboxes and the broker; {args.messages} messages each way, one at a time; sandbox "
        f"webhook batch hold {BATCH_WINDOW_S * 1000:.0f} ms"
    )
    print(row("measure", "figure", "target", "ratio"))
    for name, sample in (("customer → agent", inbound), ("agent → customer", outbound)):
        p50, p99 = percentile(sample, 0.5), percentile(sample, 0.99)
        print(row(f"{name} p50, ms", f"{p50:.1f}", TARGET_P50_MS, at_most(p50, TARGET_P50_MS)))
        print(row(f"{name} p99, ms", f"{p99:.1f}", TARGET_P99_MS, at_most(p99, TARGET_P99_MS)))
    print("(ratio > 1 meets the target: target/figure; targets are DESIGN.md's end-to-end ones)")


if __name__ == "__main__":
    main()
