"""The chat rehearsal's waits (``app.chat_rehearsal``) say what they waited for when they run
out of time: the demo's chat act prints these, so a bare ``TimeoutError`` would tell its user
nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app.chat_rehearsal import ChatStack, ClientStream
from app.worker_process import RunningWorker


async def test_a_stream_wait_that_runs_out_names_what_and_what_arrived() -> None:
    stream = ClientStream(events=[{"type": "started"}])
    with pytest.raises(TimeoutError) as raised:
        await stream.until(lambda s: "ended" in s.kinds(), "the end of the session", within=0.2)
    message = str(raised.value)
    assert message.startswith("waited 0.2 s for the end of the session, in vain")
    assert "['started']" in message
    assert "look at its log" in message


async def test_a_stream_wait_that_is_met_returns() -> None:
    stream = ClientStream()

    async def arrive() -> None:
        await asyncio.sleep(0.05)
        stream.events.append({"type": "ended"})
        stream.arrived.set()

    task = asyncio.create_task(arrive())
    await stream.until(lambda s: "ended" in s.kinds(), "the end of the session", within=5)
    await task
    assert stream.kinds() == ["ended"]


async def test_a_timeout_of_the_body_keeps_its_own_message() -> None:
    stream = ClientStream()
    stream.task = asyncio.create_task(_fails_with(TimeoutError("the stream's own read timed out")))
    with pytest.raises(TimeoutError, match="the stream's own read timed out"):
        await stream.until(lambda s: False, "anything", within=5)


async def test_a_probe_that_never_finds_names_it_and_shows_the_workers_log(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text("... rebalancing\nthe worker's last line\n")
    worker = RunningWorker({}, port=1, log=log)  # never started: only its log is read
    async with httpx.AsyncClient() as client:
        chat = ChatStack(worker=worker, workspaces={}, client=client, keys={}, chat_topic="t")

        async def nothing() -> bool:
            return False

        with pytest.raises(TimeoutError) as raised:
            await chat.eventually(nothing, "the customer's message on the desk", within=0.2)
    message = str(raised.value)
    assert message.startswith("waited 0.2 s for the customer's message on the desk, in vain")
    assert (
        f"the worker's log, {log}, ends with:\n... rebalancing\nthe worker's last line" in message
    )


async def _fails_with(error: BaseException) -> None:
    raise error
