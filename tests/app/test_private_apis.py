"""The private APIs of other libraries the hot path relies on (issue 11), each pinned here:
a release that renames or changes one fails this module, by name, instead of the worker
silently losing the behaviour (or crashing on a record).

- faust ``Producer._ensure_producer``: normalize and webhook ingest hand records to aiokafka's
  producer itself (``app.agents.normalize``, ``app.web.webhooks``);
- faust ``faust.streams._current_event``: the dedupe's batched table write names the event
  a RocksDB store finds its partition by (``app.agents.dedupe``);
- faust ``Consumer._drain_messages``' call ``wait_first(callback(message),
  suspend_flow.wait())``: the shape ``app.kafka_transport`` takes over (any other call is
  Faust's own ``wait_first``);
- faust's per-record stream step (``Stream._py_aiter``, the Cython ``StreamIterator`` its
  twin): what ``app.batch_stream`` does for each record it takes from the channel queue
  itself (drop an older generation's or a held flow's record, track the message as unacked,
  tell the sensors), with the stream attributes and ``noack_take``'s event batches it reads;
- faust ``Recovery._seek_offsets`` / ``signal_recovery_start`` / ``RebalanceAgain`` and
  ``TableManager._recovery``: a rebalance that overtakes a table recovery restarts it
  (``app.faust_recovery``; the behaviour: ``tests/app/test_faust_recovery.py``);
- faust ``Consumer.getmany``'s calls of ``_wait_next_records`` (once per batch, the fetch
  loop asking for the next only when done with the last) and ``_to_message`` (for every
  record it hands on), and the aiokafka driver's ``_new_consumer_thread`` and
  ``AIOKafkaConsumerThread._fetch_records`` (the batch taken from aiokafka, on its thread):
  where ``app.kafka_transport`` sees a changelog batch set aside;
- faust ``Recovery._recovery_started_at`` / ``_active_events_received_at`` (on the
  ``time.monotonic`` clock) and ``active_remaining()``: a recovery whose active changelogs
  stop receiving records is noticed and re-read (``app.faust_recovery``, the behaviour:
  ``tests/app/test_recovery_watch.py``); the fetch path's account it logs reads more private
  state, each read guarded, so a rename costs detail, not the worker;
- aiokafka ``Fetcher._proc_fetch_request`` (looked up by its fetch loop for every request, the
  request the loop built in its hand), ``FetchRequest._min_bytes`` / ``_max_wait_ms`` (what
  it puts on the wire) and the Faust driver's ``AIOKafkaConsumerThread.on_start`` (the
  started consumer in ``_consumer``): fuller fetches while records flow
  (``app.fetch_fill``; the behaviour: ``tests/app/test_fetch_fill.py``);
- aiohttp ``ClientSession._retry_connection``: off, so a PUT on a broken kept-alive
  connection is not sent a second time (``connectors.base.aiohttp_transport``; the
  behaviour itself: ``tests/connectors/base/test_http_ambiguous.py``).
"""

from __future__ import annotations

import inspect
import re
import time
import tomllib
import weakref
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import aiohttp
import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.streams import _current_event, current_event
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer

from app.batch_stream import BatchStream
from app.kafka_transport import Consumer, ConsumerThread, use_eager_fetch
from connectors.base.aiohttp_transport import AiohttpTransport

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
#: distribution → the private APIs of it this code uses (what to re-check on an upgrade)
PRIVATE = {
    "faust-streaming": "Producer._ensure_producer, streams._current_event, "
    "Consumer._drain_messages' wait_first call, Consumer.getmany's _wait_next_records and "
    "_to_message calls, AIOKafkaConsumerThread._fetch_records and on_start, "
    "Stream.noack_take's wait_for_stopped, "
    "Recovery._seek_offsets and its "
    "signal_recovery_start, TableManager._recovery, Recovery._recovery_started_at and "
    "_active_events_received_at",
    "aiokafka": "AIOKafkaProducer.create_batch/send_batch as Faust's producer holds it, "
    "AIOKafkaConsumer._subscription's partition states (positions), "
    "Fetcher._proc_fetch_request, FetchRequest._min_bytes/_max_wait_ms",
    "aiohttp": "ClientSession._retry_connection",
}


def _pins() -> dict[str, str]:
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    return dict(d.split("==", 1) for d in deps if "==" in d)


@pytest.mark.parametrize("dist", sorted(PRIVATE))
def test_the_libraries_whose_private_apis_we_use_are_the_pinned_releases(dist: str) -> None:
    pinned = _pins().get(dist)
    assert pinned is not None, f"{dist} must be pinned exactly (==) in pyproject.toml"
    installed = version(dist)
    assert installed == pinned, (
        f"{dist} {installed} is installed, the code was checked against {pinned}: re-check "
        f"{PRIVATE[dist]} in the new release, then move the pin"
    )


def test_faust_current_event_is_what_the_dedupe_sets() -> None:
    class Event:  # any object a weak reference can point to
        pass

    event = Event()
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        assert current_event() is cast(Any, event)
    finally:
        _current_event.reset(token)


async def test_faust_hands_out_its_aiokafka_producer() -> None:
    app = faust.App("private-api-check", broker="kafka://127.0.0.1:1")
    producer: Any = app.producer
    with pytest.raises(Exception, match="not yet started"):
        producer._ensure_producer()  # before start: refused, not a half-made producer
    producer._producer = made = producer._new_producer()  # what its on_start does first
    try:
        assert isinstance(producer._ensure_producer(), AIOKafkaProducer)
        assert producer._ensure_producer() is made
        assert callable(made.create_batch)
        assert callable(made.send_batch)
    finally:
        await made.stop()


def test_faust_fetch_loop_calls_wait_first_in_the_shape_the_transport_takes_over() -> None:
    source = re.sub(r"\s+", "", inspect.getsource(FaustConsumer._drain_messages))
    assert "awaitself.wait_first(callback(message),self.suspend_flow.wait())" in source, (
        "Faust's fetch loop no longer hands a record over as app.kafka_transport expects: "
        "re-check its Consumer.wait_first override against the new _drain_messages"
    )
    assert issubclass(Consumer, FaustConsumer)


def test_faust_stream_step_is_what_the_batch_stream_does_for_each_record_it_takes() -> None:
    step = re.sub(r"\s+", "", inspect.getsource(faust.Stream._py_aiter))
    for piece in (
        "notself.app.flow_control.is_active()",
        "ormessage.generation_id!=self.app.consumer_generation_id",
        "iftopicinacking_topicsandnotmessage.tracked:message.tracked=True",
        "add_unacked(message)on_message_in(message.tp,message.offset,message)",
        "sensor_state=on_stream_event_in(tp,offset,self,event)",
        "unacked:Set[Message]=consumer.unacked",
        "acking_topics:Set[str]=self.app.topics.acking_topics",
    ):
        assert piece in step, (
            f"Faust's per-record stream step no longer does {piece!r}: re-check what "
            "app.batch_stream.BatchStream does for each record it takes from the queue"
        )
    take = re.sub(r"\s+", "", inspect.getsource(faust.Stream.noack_take))
    assert "self.enable_acks=False" in take
    assert "event=self.current_eventbuffer_add(cast(T_co,event))" in take  # events, not values
    stream_attributes = ("_on_stream_event_in", "_on_message_in", "_processors", "combined")
    init = inspect.getsource(faust.Stream.__init__)
    assert all(f"self.{name} =" in init for name in stream_attributes)
    assert callable(faust.Stream._channel_stop_iteration)
    assert issubclass(BatchStream, faust.Stream)


async def test_aiohttp_still_has_the_retry_switch_and_the_transport_turns_it_off() -> None:
    assert "_retry_connection" in aiohttp.ClientSession.ATTRS
    transport = AiohttpTransport()
    session: Any = transport._session_now()
    try:
        assert session._retry_connection is False
    finally:
        await session.close()


def test_faust_recovery_seeks_through_the_method_the_worker_overrides() -> None:
    source = re.sub(r"\s+", "", inspect.getsource(Recovery.__dict__["_restart_recovery"].fun))
    for call in ("T(self._seek_offsets)(consumer,standby_tps,standby_offsets,", "_wait("):
        assert call in source, (
            f"Faust's recovery no longer calls {call!r}: re-check app.faust_recovery's "
            "override against the new _restart_recovery"
        )
    source = inspect.getsource(faust.tables.TableManager.recovery.fget)  # type: ignore[attr-defined]
    assert "self._recovery = Recovery(" in source


def test_faust_recovery_keeps_the_times_the_stall_watch_reads() -> None:
    started = re.sub(r"\s+", "", inspect.getsource(Recovery._set_recovery_started))
    assert "self._recovery_started_at=monotonic()" in started
    slurp = re.sub(r"\s+", "", inspect.getsource(Recovery.__dict__["_slurp_changelogs"].fun))
    for line in (
        "active_events_received_at=self._active_events_received_at",
        "active_events_received_at[tp]=now",
        "now=monotonic()",
    ):
        assert line in slurp, (
            f"Faust's recovery no longer has {line!r}: re-check what app.faust_recovery's "
            "stall watch reads"
        )
    clock = vars(faust.tables.recovery)["monotonic"]
    assert clock is time.monotonic  # the clock the watch reads them on
    assert callable(Recovery.active_remaining)


def test_faust_getmany_hands_on_through_the_methods_the_transport_overrides() -> None:
    getmany = re.sub(r"\s+", "", inspect.getsource(FaustConsumer.getmany))
    for line in (
        "records,active_partitions=awaitself._wait_next_records(timeout)",
        "to_message=self._to_message",
        "yieldtp,to_message(tp,record)",
    ):
        assert line in getmany, (
            f"Faust's getmany no longer has {line!r}: re-check how app.kafka_transport finds "
            "the changelog records it sets aside"
        )
    drain = re.sub(r"\s+", "", inspect.getsource(FaustConsumer._drain_messages))
    assert "ait=cast(AsyncIterator,getmany(timeout=1.0))" in drain  # a batch per turn
    assert "asyncfortp,messageinait:" in drain


def test_faust_takes_its_batches_from_aiokafka_on_the_thread_the_transport_overrides() -> None:
    from faust.transport.drivers import aiokafka as driver

    thread_getmany = re.sub(r"\s+", "", inspect.getsource(driver.AIOKafkaConsumerThread.getmany))
    assert "self._fetch_records," in thread_getmany
    fetch = inspect.signature(driver.AIOKafkaConsumerThread._fetch_records)
    assert list(fetch.parameters) == [
        "self",
        "consumer",
        "active_partitions",
        "timeout",
        "max_records",
    ]
    app = faust.App("private-apis", broker="kafka://127.0.0.1:1")
    use_eager_fetch(app)
    assert isinstance(cast(Any, app.consumer)._thread, ConsumerThread)
    # where app.kafka_transport.position_now reads a position without waiting (reading it
    # from a SubscriptionState itself: tests/app/test_kafka_transport.py)
    init = re.sub(r"\s+", "", inspect.getsource(AIOKafkaConsumer.__init__))
    assert "self._subscription=SubscriptionState(" in init


def test_aiokafka_fetches_through_the_method_and_request_fields_fetch_fill_changes() -> None:
    from aiokafka.consumer.fetcher import Fetcher
    from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4
    from faust.transport.drivers import aiokafka as driver

    routine = re.sub(r"\s+", "", inspect.getsource(Fetcher._fetch_requests_routine))
    assert "self._proc_fetch_request(assignment,node_id,request)" in routine
    proc = inspect.signature(Fetcher._proc_fetch_request)
    assert list(proc.parameters) == ["self", "assignment", "node_id", "request"]
    # the settings set on a built request are the ones it sends
    request = FetchRequest(1500, 1, 52428800, 0, [("t", [(0, 0, 1024)])])
    request._min_bytes, request._max_wait_ms = 65536, 50
    struct = request.build(FetchRequest_v4)
    assert (struct.min_bytes, struct.max_wait_time) == (65536, 50)
    # the fill's rate reads each requested partition's high watermark, which the fetcher
    # stores from the answer before it returns
    assert request.topics == [("t", [(0, 0, 1024)])]
    fetched = re.sub(r"\s+", "", inspect.getsource(Fetcher._proc_fetch_request))
    assert "fortopic,partitionsinrequest.topics:" in fetched
    assert "forpartition,offset,_inpartitions:" in fetched
    assert "tp_state.highwater=highwater" in fetched
    # Faust's consumer thread starts the consumer it keeps, so on_start can reach its fetcher
    on_start = re.sub(r"\s+", "", inspect.getsource(driver.AIOKafkaConsumerThread.on_start))
    assert "self._consumer=self._create_consumer(" in on_start
    assert "awaitself._consumer.start()" in on_start
