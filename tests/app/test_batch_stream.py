"""``app.batch_stream``: ``noack_take`` batches that stop waking every window while nothing
arrives, fill while records wait in the channel queue, and hand every record over once, in
order, when records come. A real Faust agent through Faust's own test context (its in-memory
channel; no broker); the stream's waits and batches are counted, not timed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest

from app import batch_stream
from app.batch_stream import BatchStream
from app.faust_app import build_app
from app.settings import load_settings

#: the window normalize and sync take with (their BATCH_WAIT_S)
WITHIN = 0.01
IDLE_S = 0.3  # thirty windows
BATCH_MAX = 20
#: what each record costs on its way into the buffer in the tests of a busy worker: a batch
#: takes 100 ms to fill, ten windows
RECORD_S = 0.005


class Taker:
    """An agent taking batches as normalize and sync do, counting the stream's waits; each
    record takes ``record_s`` to reach the buffer (a worker busy with other tasks)."""

    def __init__(self, stream_class: type[faust.Stream[Any]] | None, record_s: float = 0.0) -> None:
        options: dict[str, Any] = {} if stream_class is None else {"Stream": stream_class}
        self.app = faust.App(
            "batch-stream-test", broker="kafka://127.0.0.1:1", autodiscover=False, **options
        )
        self.batches: list[list[Any]] = []
        self.took = asyncio.Event()
        self.waits = 0

        async def busy(value: Any) -> Any:
            await asyncio.sleep(record_s)
            return value

        @self.app.agent()
        async def take(stream: Any) -> None:
            wait_for_stopped = stream.wait_for_stopped

            async def counted(*coros: Any, timeout: Any = None) -> bool:  # noqa: ASYNC109
                self.waits += 1
                return bool(await wait_for_stopped(*coros, timeout=timeout))

            stream.wait_for_stopped = counted
            if record_s:
                stream.add_processor(busy)
            async for batch in stream.noack_take(BATCH_MAX, within=WITHIN):
                self.batches.append([event.value for event in batch])
                self.took.set()

        self.agent: faust.types.AgentT[Any] = take

    @property
    def received(self) -> list[Any]:
        return [value for batch in self.batches for value in batch]

    async def until_received(self, values: list[Any]) -> None:
        async with asyncio.timeout(10):
            while self.received[-len(values) :] != values:
                self.took.clear()
                await self.took.wait()


async def test_the_worker_app_takes_its_batches_through_this_stream(tmp_path: Path) -> None:
    bundle = build_app(load_settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"))
    stream_class: object = bundle.app.conf.Stream
    assert stream_class is BatchStream


async def test_faust_stream_wakes_every_window_with_nothing_to_take() -> None:
    # What this module changes: Faust's own stream, idle, waits once per window.
    taker = Taker(None)
    async with taker.agent.test_context():
        await asyncio.sleep(IDLE_S)
    assert taker.waits >= 5, taker.waits
    assert taker.batches == []


async def test_an_idle_stream_waits_once_until_a_record_comes() -> None:
    taker = Taker(BatchStream)
    async with taker.agent.test_context():
        await asyncio.sleep(IDLE_S)
        assert taker.waits == 1  # no window ticks: one wait, for the first record
        assert taker.batches == []


async def test_records_after_idle_come_out_once_in_order_in_batches_then_it_idles_again() -> None:
    taker = Taker(BatchStream)
    values = list(range(95))
    async with taker.agent.test_context() as agent:
        await asyncio.sleep(IDLE_S)
        for value in values:
            await agent.put(value)
        await taker.until_received(values)
        assert taker.received == values
        assert all(0 < len(batch) <= BATCH_MAX for batch in taker.batches)
        settled = taker.waits
        await asyncio.sleep(IDLE_S)
        # One more window, empty, then a single wait for the next record.
        assert taker.waits - settled <= 2, (settled, taker.waits)
        await agent.put("late")
        await taker.until_received(["late"])
    assert taker.received == [*values, "late"]


async def put_all_at_once(taker: Taker, values: list[Any]) -> None:
    """Queue the records faster than they reach the buffer, as a fetch of many does."""
    async with taker.agent.test_context() as agent:
        for value in values:
            await agent.put(value)
        await taker.until_received(values[-1:])
    assert taker.received == values


async def test_batches_fill_while_records_wait_in_the_channel_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_stream, "FILL_MAX_S", 5.0)  # the rule, not the bound, here
    taker = Taker(BatchStream, record_s=RECORD_S)
    values = list(range(95))
    await put_all_at_once(taker, values)
    # As many full batches as the records allow: the first record may go alone (an idle
    # stream hands it over at once), and the last batches take what is left.
    full = [len(batch) for batch in taker.batches].count(BATCH_MAX)
    assert full == len(values) // BATCH_MAX, [len(batch) for batch in taker.batches]


async def test_the_fill_stops_at_its_bound_and_faust_stream_does_not_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the fill, a window closes with records still queued: smaller batches.
    monkeypatch.setattr(batch_stream, "FILL_MAX_S", 0.0)
    for stream_class in (None, BatchStream):
        taker = Taker(stream_class, record_s=RECORD_S)
        values = list(range(95))
        await put_all_at_once(taker, values)
        full = [len(batch) for batch in taker.batches].count(BATCH_MAX)
        assert full < len(values) // BATCH_MAX, (stream_class, [len(b) for b in taker.batches])
