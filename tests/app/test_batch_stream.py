"""``app.batch_stream``: ``noack_take`` batches taken from the channel queue in one go, that
wait for a record without ticking while nothing arrives, hand every record over once and in
order, and drop what an older consumer generation read, as Faust's stream does. A real Faust
agent through Faust's own test context (its in-memory channel; no broker); the stream's
waits and batches are counted, not timed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import faust
import pytest

from app.batch_stream import BatchSensor, BatchStream
from app.faust_app import build_app
from app.settings import load_settings

#: the window normalize and sync take with (their BATCH_WAIT_S)
WITHIN = 0.01
IDLE_S = 0.3  # thirty windows
BATCH_MAX = 20


class Taker:
    """An agent taking batches as normalize and sync do. ``waits`` counts the stream's
    waits for its channel queue (Faust's stream: for its buffer to fill, each window)."""

    def __init__(
        self,
        stream_class: type[faust.Stream[Any]] | None,
        *,
        within: float = WITHIN,
        processor: Any = None,
    ) -> None:
        options: dict[str, Any] = {} if stream_class is None else {"Stream": stream_class}
        self.app = faust.App(
            "batch-stream-test", broker="kafka://127.0.0.1:1", autodiscover=False, **options
        )
        self.batches: list[list[Any]] = []
        self.ended = asyncio.Event()  # the batches ended and the agent returned
        self.took = asyncio.Event()
        self.waits = 0
        #: cleared, the agent holds on to each batch it took until it is set (a busy agent)
        self.free = asyncio.Event()
        self.free.set()

        @self.app.agent()
        async def take(stream: Any) -> None:
            self._count_waits(stream)
            if processor is not None:
                stream.add_processor(processor)
            elif isinstance(stream, BatchStream):
                # Faust's test context records each value through a processor of its own (for
                # put(wait=True)); a worker's agents have none, and a stream with processors
                # keeps Faust's take. Records are put without waiting here.
                stream._processors.clear()
            async for batch in stream.noack_take(BATCH_MAX, within=within):
                self.batches.append([event.value for event in batch])
                self.took.set()
                await self.free.wait()
            self.ended.set()

        self.agent: faust.types.AgentT[Any] = take

    def _count_waits(self, stream: Any) -> None:
        if isinstance(stream, BatchStream):
            queue = cast(faust.ChannelT[Any], stream.channel).queue
            get = queue.get

            async def counted_get() -> Any:
                self.waits += 1
                return await get()

            queue.get = counted_get
            return
        wait_for_stopped = stream.wait_for_stopped

        async def counted(*coros: Any, timeout: Any = None) -> bool:  # noqa: ASYNC109
            self.waits += 1
            return bool(await wait_for_stopped(*coros, timeout=timeout))

        stream.wait_for_stopped = counted

    @property
    def received(self) -> list[Any]:
        return [value for batch in self.batches for value in batch]

    async def until_received(self, values: list[Any]) -> None:
        async with asyncio.timeout(10):
            while self.received[-len(values) :] != values:
                self.took.clear()
                await self.took.wait()

    async def put_in_bursts(self, values: list[Any]) -> None:
        """Put ``values`` in bursts of seven, and wait until the agent took the last one."""
        async with self.agent.test_context() as agent:
            for n, value in enumerate(values):
                await agent.put(value, wait=False)
                if n % 7 == 0:
                    await asyncio.sleep(0.002)
            await self.until_received(values[-1:])

    async def until_count(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self.took.clear()
                await self.took.wait()


async def test_the_worker_app_takes_its_batches_through_this_stream(tmp_path: Path) -> None:
    bundle = build_app(load_settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"))
    stream_class: object = bundle.app.conf.Stream
    assert stream_class is BatchStream
    bundle.app.on_init_dependencies()  # what a starting worker does: its monitor joins
    sensors = list(bundle.app.sensors)
    assert sensors  # (the Prometheus monitor)
    assert all(isinstance(sensor, BatchSensor) for sensor in sensors)  # batches told at once


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
            await agent.put(value, wait=False)
            await asyncio.sleep(0)  # one at a time: the stream may take each as it comes
        await taker.until_received(values)
        assert taker.received == values
        assert all(0 < len(batch) <= BATCH_MAX for batch in taker.batches)
        settled = taker.waits
        await asyncio.sleep(IDLE_S)
        # At most a window's waits, then a single wait for the next record.
        assert taker.waits - settled <= 2, (settled, taker.waits)
        await agent.put("late", wait=False)
        await taker.until_received(["late"])
    assert taker.received == [*values, "late"]


async def test_records_already_queued_go_out_in_full_batches_without_waiting() -> None:
    # A fetch of many records lands in the queue while the agent is busy: each batch then
    # takes all it may hold, with no wait between (Faust's stream took them a record and a
    # loop turn at a time, and its windows closed with records still queued).
    taker = Taker(BatchStream)
    values = list(range(95))
    async with taker.agent.test_context() as agent:
        taker.free.clear()
        await agent.put(values[0], wait=False)
        await taker.until_received(values[:1])  # an idle stream hands it over at once
        waits = taker.waits
        for value in values[1:]:
            await agent.put(value, wait=False)  # not waiting for the busy agent
        taker.free.set()
        await taker.until_received(values[-1:])
        assert [len(batch) for batch in taker.batches] == [1, 20, 20, 20, 20, 14]
        # Every record came off the queue without a wait: the only waits are those after the
        # last batch (its window, then an idle stream's wait for the next record).
        assert taker.waits - waits <= 2, (waits, taker.waits)
    assert taker.received == values


async def test_without_a_window_a_batch_is_what_is_queued_and_nothing_waits_for_more() -> None:
    # The sinks' feed (``app.agents.lanes``, ``within=0``): what is queued goes to the lanes
    # at once, and a command after a batch waits for no window (with one, the stream waits
    # once more after each batch for records to fill it).
    taker = Taker(BatchStream, within=0.0)
    values = list(range(30))
    async with taker.agent.test_context() as agent:
        taker.free.clear()
        await agent.put(values[0], wait=False)
        await taker.until_received(values[:1])
        for value in values[1:]:
            await agent.put(value, wait=False)
        waits = taker.waits
        taker.free.set()
        await taker.until_received(values[-1:])
        await asyncio.sleep(IDLE_S)
        assert [len(batch) for batch in taker.batches] == [1, 20, 9]
        assert taker.waits - waits == 1  # the idle stream's wait for the next record only
    assert taker.received == values


async def test_a_batch_goes_out_as_soon_as_it_is_full_however_long_its_window() -> None:
    taker = Taker(BatchStream, within=60.0)
    values = list(range(2 * BATCH_MAX))
    async with taker.agent.test_context() as agent:
        for value in values:
            await agent.put(value, wait=False)
            await asyncio.sleep(0.001)  # records trickle in: a batch fills a record at a time
        await taker.until_count(1 + BATCH_MAX)  # well within the window
        assert [len(batch) for batch in taker.batches][:2] == [1, BATCH_MAX]


async def test_records_an_older_consumer_generation_read_are_dropped() -> None:
    # As Faust's stream drops them: read before a rebalance, their partition's new owner
    # reads them again from the committed offset.
    taker = Taker(BatchStream)
    async with taker.agent.test_context() as agent:
        taker.app.consumer_generation_id = 1
        taker.free.clear()
        await agent.put("before", wait=False)
        await taker.until_received(["before"])
        for value in ("old-1", "old-2"):
            await agent.put(value, wait=False)  # queued while the agent is busy
        taker.app.consumer_generation_id = 2  # a rebalance
        await agent.put("new", wait=False)
        taker.free.set()
        await taker.until_received(["new"])
    assert taker.received == ["before", "new"]


async def test_a_stopping_channel_ends_the_batches_and_the_agent_returns() -> None:
    # A worker's stop ends a stream's readers by throwing StopAsyncIteration at its queue;
    # raised inside the batches' generator it would crash the agent instead (RuntimeError),
    # and the worker would not stop cleanly.
    taker = Taker(BatchStream)
    async with taker.agent.test_context() as agent:
        await agent.put("last", wait=False)
        await taker.until_received(["last"])
        queue = cast(faust.ChannelT[Any], agent.stream().channel).queue
        await queue.throw(StopAsyncIteration())
        async with asyncio.timeout(5):
            await taker.ended.wait()
    assert taker.received == ["last"]


async def test_a_stream_with_processors_keeps_faust_take_and_runs_them() -> None:
    processed: list[Any] = []

    def note(value: Any) -> Any:
        processed.append(value)
        return value

    taker = Taker(BatchStream, processor=note)
    values = list(range(30))
    async with taker.agent.test_context() as agent:
        for value in values:
            await agent.put(value, wait=False)
        await taker.until_received(values[-1:])
    assert taker.received == values
    assert processed == values


@pytest.mark.parametrize("stream_class", [None, BatchStream])
async def test_both_streams_hand_over_the_same_records(
    stream_class: type[faust.Stream[Any]] | None,
) -> None:
    taker = Taker(stream_class)
    values = [f"r{n}" for n in range(57)]
    await taker.put_in_bursts(values)
    assert taker.received == values


class CountingSensor(faust.Sensor):
    """Hears records one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.events.append(event.value)


class BatchCountingSensor(CountingSensor):
    """Hears whole batches too: a ``BatchSensor``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Any]] = []

    def on_batch_in(self, stream: Any, events: Any, tracked: Any) -> None:
        self.batches.append([event.value for event in events])


async def test_a_batch_sensor_hears_each_batch_once_as_the_agent_takes_it() -> None:
    taker = Taker(BatchStream)
    sensor = BatchCountingSensor()
    taker.app.sensors.add(sensor)  # the app's only sensor, as the worker's Prometheus monitor
    assert list(taker.app.sensors) == [sensor]
    values = [f"r{n}" for n in range(57)]
    await taker.put_in_bursts(values)
    assert sensor.batches == taker.batches
    assert len(sensor.batches) > 1
    assert sensor.events == []


async def test_with_a_sensor_that_takes_records_every_sensor_hears_each_record() -> None:
    taker = Taker(BatchStream)
    batch_sensor, record_sensor = BatchCountingSensor(), CountingSensor()
    taker.app.sensors.add(batch_sensor)
    taker.app.sensors.add(record_sensor)
    values = [f"r{n}" for n in range(30)]
    await taker.put_in_bursts(values)
    assert record_sensor.events == batch_sensor.events == values
    assert batch_sensor.batches == []
