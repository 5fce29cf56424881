"""The chat rehearsal's waits (``app.chat_rehearsal``) say what did not happen when they run
out of time: the demo's chat act prints these, so a bare ``TimeoutError`` would tell its user
nothing."""

from __future__ import annotations

import asyncio

import pytest

from app.chat_rehearsal import ClientStream


async def test_a_stream_wait_that_runs_out_names_what_and_what_arrived() -> None:
    stream = ClientStream(events=[{"type": "started"}])
    with pytest.raises(TimeoutError) as raised:
        await stream.until(lambda s: "ended" in s.kinds(), "the end of the session", within=0.2)
    message = str(raised.value)
    assert message.startswith("the end of the session did not happen within 0.2 s")
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


async def _fails_with(error: BaseException) -> None:
    raise error
