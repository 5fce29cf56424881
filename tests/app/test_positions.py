"""Positions: what may have run before, what is delivered, and no record skipped on the way to
the agent (a gap is read again from the first missing record, and that never stalls silently).
The decisions themselves are tested in test_read_order.py; these drive the consumer calls."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.types import TP, Message
from prometheus_client import CollectorRegistry, generate_latest

from app.agents import positions as positions_module
from app.agents import read_order
from app.agents.positions import Positions
from app.faust_app import build_app
from app.metrics import Metrics
from app.settings import load_settings

TOPIC = "commands.intercom"
REPO = Path(__file__).parents[2]


@dataclass
class _Consumer:
    """Faust's consumer as Positions uses it (its committed and read offsets, seeks)."""

    committed: dict[TP, int | None] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    end: int = 100
    log_start: int = 0
    assigned: set[TP] = field(default_factory=lambda: {TP(TOPIC, p) for p in range(6)})
    #: errors the next seeks raise, in order
    seek_errors: list[Exception] = field(default_factory=list)
    _read_offset: dict[TP, int | None] = field(default_factory=dict)
    _paused_partitions: set[TP] = field(default_factory=set)
    #: where the fetcher stands in each partition (the next offset it fetches)
    positions: dict[TP, int] = field(default_factory=dict)
    flow_active: bool = True
    #: partitions whose committed offsets perform_seek has not looked up yet
    not_looked_up: set[TP] = field(default_factory=set)

    @property
    def _committed_offset(self) -> dict[TP, int | None]:
        return self.committed

    def committed_at_assignment(self, tp: TP) -> int | None:
        # as the lookup says: the committed offset, or with nothing committed the log's start
        if tp in self.not_looked_up:
            return None
        committed = self.committed.get(tp)
        return self.log_start if committed is None else committed

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, self.log_start)

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    def highwater(self, tp: TP) -> int:
        return self.end

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        if self.seek_errors:
            raise self.seek_errors.pop(0)
        self.seeks += partitions.items()


class _Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, receiver: Any) -> None:
        self.receivers.append(receiver)

    async def send(self, *args: Any) -> None:
        for receiver in self.receivers:
            result = receiver(None, *args, signal=self)
            if asyncio.iscoroutine(result):
                await result


@dataclass
class _App:
    consumer: _Consumer
    on_partitions_revoked: _Signal = field(default_factory=_Signal)
    on_partitions_assigned: _Signal = field(default_factory=_Signal)
    crashed: list[BaseException] = field(default_factory=list)
    timers: list[Any] = field(default_factory=list)
    rebalancing: bool = False

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)

    def timer(self, interval: float, name: str) -> Any:
        def register(fun: Any) -> Any:
            self.timers.append(fun)
            return fun

        return register

    async def tick(self) -> None:
        for timer in self.timers:
            await timer(self)


def _positions(app: _App, metrics: Metrics | None = None) -> Positions:
    metrics = metrics or Metrics(CollectorRegistry())
    return Positions(cast(faust.App, app), metrics, "sink-intercom", [TOPIC])


def _app(consumer: _Consumer) -> _App:
    return _App(consumer)


def _event(offset: int, partition: int = 3) -> faust.EventT[Any]:
    message = Message(TOPIC, partition, offset, 0.0, 0, [], b"k", b"v", None)
    return cast(faust.EventT[Any], SimpleNamespace(message=message))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_gap_is_read_again_from_the_first_missing_record() -> None:
    consumer = _Consumer()
    positions = _positions(_app(consumer))
    assert [positions.received(_event(o)) for o in (0, 1)] == [True, True]
    assert positions.received(_event(3)) is False  # 2 never reached the agent
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 2)]
    assert consumer._read_offset[TP(TOPIC, 3)] == 2  # read up to the target, not past it
    assert positions.received(_event(4)) is False  # fetched before the seek took effect
    assert positions.received(_event(3)) is False  # not the first missing one either
    assert [positions.received(_event(o)) for o in (2, 3, 4)] == [True, True, True]


async def test_a_seek_that_did_not_bring_the_missing_record_is_made_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust filtered 5..7 out as read: nothing more comes on this quiet partition unless
    # the seek is made again, on a timer.
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    consumer = _Consumer(committed={TP(TOPIC, 3): 5})
    positions = _positions(_app(consumer))
    assert positions.received(_event(8)) is False
    await asyncio.sleep(0.05)
    assert len(consumer.seeks) >= 2
    assert set(consumer.seeks) == {(TP(TOPIC, 3), 5)}
    assert positions.received(_event(5)) is True
    await asyncio.sleep(0.05)
    seeks = len(consumer.seeks)
    await asyncio.sleep(0.05)
    assert len(consumer.seeks) == seeks  # back: no more seeks


async def test_a_partition_that_resumes_past_its_committed_offset_is_read_from_there() -> None:
    # Assigned again with nothing committed, the fetcher went on at 2: 0 and 1 were dropped
    # while the flow was suspended (how the cluster suite lost two commands).
    consumer = _Consumer(committed={TP(TOPIC, 3): None})
    positions = _positions(_app(consumer))
    assert positions.received(_event(2)) is False
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 0)]
    assert [positions.received(_event(o)) for o in (0, 1, 2)] == [True, True, True]
    assert not positions.may_have_run(_event(101))
    assert positions.may_have_run(_event(2))  # below the end offset at the first fetch


async def test_a_log_that_starts_later_is_read_from_its_start() -> None:
    consumer = _Consumer(committed={}, log_start=10)  # retention removed offsets 0..9
    positions = _positions(_app(consumer))
    assert positions.received(_event(12)) is False
    await _settle()
    assert consumer.seeks == [(TP(TOPIC, 3), 10)]
    assert [positions.received(_event(o)) for o in (10, 11, 12)] == [True, True, True]


async def test_records_before_the_lookup_of_the_committed_offset_are_not_taken_for_a_gap() -> None:
    # Reassigned with 40 committed, aiokafka fetched from 40 while the recovery's perform_seek
    # was still looking it up, and Faust's record of it said None: 40 looked like a record
    # past a gap from 0, and the partition was sought to the start of its log.
    tp = TP(TOPIC, 3)
    consumer = _Consumer(committed={tp: None}, not_looked_up={tp}, positions={tp: 42})
    app = _app(consumer)
    metrics = Metrics(CollectorRegistry())
    positions = _positions(app, metrics)
    assert [positions.received(_event(o)) for o in (40, 41)] == [False, False]
    assert metrics.rewinds.labels("sink-intercom", "early_dropped")._value.get() == 2
    for _ in range(read_order.TAIL_LOOKS):
        await app.tick()  # the tail check judges nothing before the lookup either
    await _settle()
    assert consumer.seeks == []
    consumer.committed[tp] = 40  # looked up, and sought there: 40 and 41 come again
    consumer.not_looked_up.clear()
    assert [positions.received(_event(o)) for o in (40, 41, 42)] == [True, True, True]
    assert consumer.seeks == []
    assert metrics.rewinds.labels("sink-intercom", "started")._value.get() == 0


async def test_a_gap_left_by_records_dropped_before_the_lookup_is_told_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing committed: records 0-6 were dropped before the lookup, and its seek to the log's
    # start did not bring them back before 7 came. The rewind reads them again; it is not a
    # loss to warn of. A gap after a record processed is.
    tp = TP(TOPIC, 4)
    consumer = _Consumer(committed={tp: None}, not_looked_up={tp}, positions={tp: 8})
    app = _app(consumer)
    metrics = Metrics(CollectorRegistry())
    positions = _positions(app, metrics)
    caplog.set_level(logging.INFO, logger=positions_module.__name__)
    assert [positions.received(_event(o, partition=4)) for o in range(7)] == [False] * 7
    consumer.not_looked_up.clear()  # looked up: the log's start, 0
    assert positions.received(_event(7, partition=4)) is False  # a gap from 0
    assert [positions.received(_event(o, partition=4)) for o in range(9)] == [True] * 9
    assert positions.received(_event(12, partition=4)) is False  # 9-11 skipped
    told = [
        (r.levelno, r.getMessage().split(":")[0])
        for r in caplog.records
        if "again" in r.getMessage()
    ]
    assert told == [
        (logging.INFO, "records dropped before the committed offset was looked up"),
        (logging.WARNING, "records skipped before they reached the agent"),
    ]
    assert metrics.rewinds.labels("sink-intercom", "started")._value.get() == 2
    await _settle()


async def test_a_failing_seek_is_logged_and_made_again_until_the_record_is_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The seek that once raised inside the rewind task ended it for good, and every later
    # record of the partition was dropped without a word.
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    consumer = _Consumer(seek_errors=[TimeoutError(), RuntimeError("not assigned")])
    metrics = Metrics(CollectorRegistry())
    positions = _positions(_app(consumer), metrics)
    caplog.set_level(logging.INFO, logger=positions_module.__name__)
    assert positions.received(_event(4)) is False
    await asyncio.sleep(0.1)
    assert consumer.seeks
    assert set(consumer.seeks) == {(TP(TOPIC, 3), 0)}
    failed = [r.getMessage() for r in caplog.records if "seek back" in r.getMessage()]
    assert len(failed) == 2
    assert "partition=3" in failed[0]
    assert "TimeoutError" in failed[0]
    assert metrics.rewinds.labels("sink-intercom", "seek_failed")._value.get() == 2
    assert metrics.rewinds_open.labels("sink-intercom")._value.get() == 1
    assert positions.received(_event(0)) is True
    completed = [r.getMessage() for r in caplog.records if "are back" in r.getMessage()]
    assert len(completed) == 1
    assert "failed_seeks=2" in completed[0]
    assert metrics.rewinds.labels("sink-intercom", "completed")._value.get() == 1
    assert metrics.rewinds_open.labels("sink-intercom")._value.get() == 0


async def test_a_rewind_not_back_in_time_is_reported_then_given_up_with_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    monkeypatch.setattr(read_order, "WARN_AFTER_S", 0.03)
    monkeypatch.setattr(read_order, "GIVE_UP_AFTER_S", 0.2)
    consumer = _Consumer()
    app = _app(consumer)
    positions = _positions(app)
    caplog.set_level(logging.INFO, logger=positions_module.__name__)
    assert positions.received(_event(7)) is False
    await asyncio.sleep(0.4)
    overdue = [r for r in caplog.records if "not back yet" in r.getMessage()]
    assert overdue
    assert overdue[0].levelno == logging.WARNING
    assert f"topic={TOPIC} partition=3 from_offset=0" in overdue[0].getMessage()
    assert len(app.crashed) == 1
    assert "did not come back" in str(app.crashed[0])
    seeks = len(consumer.seeks)
    await asyncio.sleep(0.05)
    assert len(consumer.seeks) == seeks  # given up: no more seeks
    # Still held back: processing past the gap would let the stop commit over it.
    assert positions.received(_event(8)) is False


async def test_a_rebalance_ends_a_rewind_and_the_count_starts_from_the_new_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    consumer = _Consumer()
    app = _app(consumer)
    positions = _positions(app)
    assert positions.received(_event(6)) is False
    await _settle()
    consumer.committed[TP(TOPIC, 3)] = 6  # another owner read 0..5 meanwhile
    await app.on_partitions_assigned.send({TP(TOPIC, 3)})
    await asyncio.sleep(0.03)
    seeks = len(consumer.seeks)
    await asyncio.sleep(0.03)
    assert len(consumer.seeks) == seeks  # the rewind loop ended with it
    assert positions.received(_event(6)) is True


async def test_a_record_of_a_partition_no_longer_assigned_is_left_to_its_owner() -> None:
    consumer = _Consumer(assigned={TP(TOPIC, 0)})
    positions = _positions(_app(consumer))
    assert positions.received(_event(9)) is False
    await _settle()
    assert consumer.seeks == []  # a seek there would raise: not ours


async def test_a_partition_fetched_past_its_last_records_is_read_again() -> None:
    # Dropped while a rebalance finished, a partition's last records left its fetcher at the
    # end with nothing committed and nothing processed: no later record would reveal them.
    raw = TP(TOPIC, 1)
    consumer = _Consumer(committed={raw: None}, positions={raw: 9, TP("other", 1): 5})
    app = _app(consumer)
    positions = _positions(app)
    for _ in range(1, read_order.TAIL_LOOKS):
        await app.tick()
        await _settle()
        assert consumer.seeks == []  # they may still be on their way to the agent
    await app.tick()
    await _settle()
    assert consumer.seeks == [(raw, 0)]
    assert [positions.received(_event(o, partition=1)) for o in (8, 0, 1)] == [False, True, True]


async def test_a_paused_partition_is_not_taken_for_skipped_and_found_once_resumed() -> None:
    # A lane behind pauses its partition (app.agents.lanes): the records Faust had fetched
    # beyond the pause never reach the agent meanwhile, and no seek would bring them.
    tp = TP(TOPIC, 1)
    consumer = _Consumer(committed={tp: 0}, positions={tp: 9}, _paused_partitions={tp})
    app = _app(consumer)
    positions = _positions(app)
    assert positions.received(_event(0, partition=1)) is True
    for _ in range(read_order.TAIL_LOOKS + 2):
        await app.tick()
    await _settle()
    assert consumer.seeks == []
    consumer._paused_partitions.clear()  # resumed: the fetch position still past them
    for _ in range(read_order.TAIL_LOOKS):
        await app.tick()
    await _settle()
    assert consumer.seeks == [(tp, 1)]


async def test_a_rewind_is_not_given_up_while_its_partition_is_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(positions_module, "RESEEK_AFTER_S", 0.01)
    monkeypatch.setattr(read_order, "GIVE_UP_AFTER_S", 0.1)
    consumer = _Consumer()
    app = _app(consumer)
    positions = _positions(app)
    assert positions.received(_event(7)) is False  # a rewind to 0 starts
    consumer._paused_partitions.add(TP(TOPIC, 3))  # then a lane pauses the partition
    await asyncio.sleep(0.3)
    assert app.crashed == []
    consumer._paused_partitions.clear()
    await asyncio.sleep(0.3)  # resumed, and still not back: given up as ever
    assert len(app.crashed) == 1


async def test_records_a_late_seek_brings_a_second_time_are_not_processed_again() -> None:
    # A busy worker: two commands fetched but slow to reach the agent, taken for dropped by
    # the tail check; they arrive, then the seek back lands and they come again (Faust's
    # read offset is set back to the target). The sinks once executed them twice.
    tp = TP(TOPIC, 2)
    consumer = _Consumer(committed={tp: 0}, positions={tp: 57})
    metrics = Metrics(CollectorRegistry())
    app = _app(consumer)
    positions = _positions(app, metrics)
    assert all(positions.received(_event(o, partition=2)) for o in range(55))
    for _ in range(read_order.TAIL_LOOKS):
        await app.tick()
    await _settle()
    assert consumer.seeks == [(tp, 55)]
    # Already on their way inside the worker: they arrive, then what the seek fetched.
    assert [positions.received(_event(o, partition=2)) for o in (55, 56)] == [True, True]
    assert [positions.received(_event(o, partition=2)) for o in (55, 56, 57)] == [
        False,
        False,
        True,
    ]
    assert metrics.rewinds.labels("sink-intercom", "redelivery_dropped")._value.get() == 2
    assert metrics.rewinds_open.labels("sink-intercom")._value.get() == 0


async def test_a_partition_the_agent_keeps_up_with_is_left_alone() -> None:
    tp = TP(TOPIC, 2)
    consumer = _Consumer(committed={tp: 4}, positions={tp: 6})
    app = _app(consumer)
    positions = _positions(app)
    await app.tick()
    assert positions.received(_event(4, partition=2)) is True  # progress since the last look
    await app.tick()
    assert positions.received(_event(5, partition=2)) is True
    consumer.positions[tp] = 6  # everything fetched has arrived
    for _ in range(read_order.TAIL_LOOKS):
        await app.tick()
    app.rebalancing = True
    consumer.positions[tp] = 9
    for _ in range(read_order.TAIL_LOOKS):
        await app.tick()
    await _settle()
    assert consumer.seeks == []


def test_every_agent_of_a_worker_reads_through_positions(tmp_path: Path) -> None:
    # Faust's fetcher can drop records in a rebalance: an agent without Positions would
    # pass over them (a hand-off the chat relay never saw opens no chat). Each agent's
    # Positions labels its consumer lag with the agent's name.
    settings = load_settings(
        kafka_bootstrap_servers="127.0.0.1:9",  # built, never started: nothing connects
        state_dir=tmp_path,
        sync_config=REPO / "config" / "intercom-zendesk-salesforce.example.yaml",
        connectors={
            "intercom": {"platform": "intercom"},
            "zendesk": {"platform": "zendesk"},
            "desk": {"platform": "zendesk_conversations", "app_id": "desk-app"},
            "widget": {"platform": "ai_agent"},
        },
    )
    bundle = build_app(settings)
    agents = {agent.name.rpartition(".")[2] for agent in bundle.app.agents.values()}
    assert {"normalize", "sync", "chat-relay", "chat-bridge", "timers"} <= agents
    lag = "deskstream_consumer_lag_records{"
    guarded = {
        line.split('agent="')[1].split('"')[0]
        for line in generate_latest(bundle.metrics.registry).decode().splitlines()
        if line.startswith(lag)
    }
    assert agents == guarded


async def test_consumer_lag_counts_from_the_log_start_where_nothing_is_committed() -> None:
    # Retention removed a log's first 40 records: a partition with nothing committed is 60
    # behind at an end of 100, not 100 (a partition not looked up yet is left out).
    tps = [TP(TOPIC, p) for p in range(3)]
    consumer = _Consumer(committed={tps[0]: 90, tps[1]: None}, log_start=40, end=100)
    consumer.assigned = set(tps)
    consumer.not_looked_up = {tps[2]}
    metrics = Metrics(CollectorRegistry())
    app = _app(consumer)
    _positions(app, metrics)
    await app.tick()
    lag = metrics.registry.get_sample_value(
        "deskstream_consumer_lag_records", {"agent": "sink-intercom"}
    )
    assert lag == 10 + 60
