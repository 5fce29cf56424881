"""The order normalize's dedupe writes in (``app.agents.dedupe``): an id is remembered only
after every record its delivery caused is acknowledged, so a restored state never holds an
event that is not in Kafka. Real Kafka is in ``tests/app/test_worker_e2e.py``; here the
table is a stand-in that records what would reach its changelog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pytest
from faust.types import TP, TableT
from prometheus_client import CollectorRegistry

from app.agents import acks
from app.agents.dedupe import EventDedupe, SentIds
from app.metrics import Metrics
from schemas.models import Envelope
from streams.recent_ids import contains, digest, remember, size_of
from tests.schemas.examples import EXAMPLES

T0 = 1_780_000_000


class _Table:
    """What EventDedupe uses of a Faust table (its data) and of its changelog writer."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes]] = []
        self.acks: list[asyncio.Future[None]] = []

    async def write(
        self, records: Sequence[tuple[int, bytes, bytes]]
    ) -> list[asyncio.Future[None]]:
        """The changelog writer's side: each record sent, its acknowledgement to come."""
        acks: list[asyncio.Future[None]] = []
        for record in records:
            self.changelog.append(record)
            acks.append(asyncio.get_running_loop().create_future())
        self.acks += acks
        return acks


def _dedupe(table: _Table) -> tuple[EventDedupe, Metrics]:
    metrics = Metrics(CollectorRegistry())
    table_t = cast(TableT[bytes, bytes], table)
    dedupe = EventDedupe(table_t, metrics, changelog=table, window_seconds=3600, max_ids=16)
    return dedupe, metrics


def _events(*ids: str) -> list[tuple[Envelope, bytes]]:
    example = EXAMPLES["Envelope-case"]
    assert isinstance(example, Envelope)
    return [(example.model_copy(update={"event_id": i}), i.encode()) for i in ids]


async def _run_ready_callbacks() -> None:
    for _ in range(10):  # gather's callbacks take a few turns of the loop
        await asyncio.sleep(0)


def _dropped(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "deskstream_duplicate_events_dropped_total", {"platform": "generic"}
    )
    return value or 0.0


async def test_an_id_is_remembered_only_after_its_records_are_acknowledged() -> None:
    table = _Table()
    dedupe, metrics = _dedupe(table)
    key = b"crm:case:1"
    kept, digests = dedupe.fresh(key, _events("a", "b"), now=T0, platform="generic")
    assert [e.event_id for e, _ in kept] == ["a", "b"]
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(
        dedupe.remember(key, 3, digests, [sent], now=T0, platform="generic")
    )
    await _run_ready_callbacks()
    assert table.changelog == []  # the events are not acknowledged yet

    # A copy while the first is on its way is dropped all the same.
    again, _ = dedupe.fresh(key, _events("b", "c"), now=T0 + 1, platform="generic")
    assert [e.event_id for e, _ in again] == ["c"]
    assert _dropped(metrics) == 1

    sent.set_result(None)
    await _run_ready_callbacks()
    [(partition, written_key, state)] = table.changelog
    assert (partition, written_key, size_of(state)) == (3, key, 2)
    assert not task.done()  # done only once the changelog record is acknowledged
    table.acks[0].set_result(None)
    await task
    copies, _ = dedupe.fresh(key, _events("a"), now=T0 + 2, platform="generic")
    assert copies == []


async def test_failed_sends_remember_nothing() -> None:
    table = _Table()
    dedupe, _ = _dedupe(table)
    key = b"crm:case:2"
    _, digests = dedupe.fresh(key, _events("x"), now=T0, platform="generic")
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("not acknowledged"))
    with pytest.raises(RuntimeError):
        await dedupe.remember(key, 0, digests, [failed], now=T0, platform="generic")
    assert table.changelog == []
    assert table.data == {}
    # The worker crashes on a failed send; were the record read again, it would go out.
    kept, _ = dedupe.fresh(key, _events("x"), now=T0, platform="generic")
    assert [e.event_id for e, _ in kept] == ["x"]
    assert digest("x") in digests


async def test_a_copy_under_another_raw_key_is_dropped_while_the_first_is_in_flight() -> None:
    # An event id names the event whatever record carries it (its source event's id): a copy
    # whose key was read otherwise from its body is one too.
    table = _Table()
    dedupe, metrics = _dedupe(table)
    _, digests = dedupe.fresh(b"crm:case:5", _events("e"), now=T0, platform="generic")
    copies, none = dedupe.fresh(b"crm:case:6", _events("e"), now=T0, platform="generic")
    assert (copies, none) == ([], [])
    assert _dropped(metrics) == 1
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    remembering = asyncio.ensure_future(
        dedupe.remember(b"crm:case:5", 0, digests, [sent], now=T0, platform="generic")
    )
    sent.set_result(None)
    await _run_ready_callbacks()
    table.acks[0].set_result(None)
    await remembering
    # Remembered under its own key only: under the other, it passes (the sync stage drops it).
    again, _ = dedupe.fresh(b"crm:case:6", _events("e"), now=T0, platform="generic")
    assert [e.event_id for e, _ in again] == ["e"]


async def test_a_record_read_again_with_only_copies_writes_its_keys_state_again() -> None:
    # A RocksDB store kept the ids through a stop before their changelog record was
    # acknowledged: the record read again finds them and drops its events, and its key's
    # state goes to the changelog again before the record is acked.
    table = _Table()
    dedupe, _ = _dedupe(table)
    key = b"crm:case:7"
    table.data[key] = remember(None, [digest("a")], now=T0, window=3600, max_ids=16).state
    kept, digests = dedupe.fresh(key, _events("a"), now=T0 + 1, platform="generic")
    assert (kept, digests) == ([], [])
    again = SentIds(key, 2, digests, T0 + 1, "generic")  # what normalize gives a record read again
    remembering = asyncio.ensure_future(dedupe.remember_all([again], []))
    await _run_ready_callbacks()
    assert table.changelog == [(2, key, table.data[key])]
    assert contains(table.changelog[0][2], digest("a"), now=T0 + 1, window=3600)
    assert not remembering.done()  # the raw record waits for that record's acknowledgement
    table.acks[0].set_result(None)
    await remembering


async def test_a_copy_dropped_while_its_original_is_in_flight_is_acked_after_it() -> None:
    # The original's batch from before a revocation the settle did not wait out, its record
    # read again here once the partition came back: acked first, the copy's record could be
    # committed past an event the original's failed send then loses.
    table = _Table()
    dedupe, _ = _dedupe(table)
    key = b"crm:case:8"
    _, digests = dedupe.fresh(key, _events("a"), now=T0, platform="generic")
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    [original] = dedupe.remember_batch([SentIds(key, 0, digests, T0, "generic")], [sent])
    # The next batch: the record read again, and a copy under the same batch's other record.
    kept, b_ids = dedupe.fresh(key, _events("a", "b", "b"), now=T0, platform="generic")
    assert [e.event_id for e, _ in kept] == ["b"]
    waits = dedupe.remember_batch([SentIds(key, 0, b_ids, T0, "generic")], [])
    assert original in waits  # its records wait for the original's too, not only their own
    sent.set_exception(RuntimeError("not acknowledged"))
    with pytest.raises(RuntimeError):
        await asyncio.gather(*waits)
    # A batch that dropped nothing in flight waits for its own remembering only.
    _, c_ids = dedupe.fresh(key, _events("c"), now=T0, platform="generic")
    [own] = dedupe.remember_batch([SentIds(key, 0, c_ids, T0, "generic")], [])
    await _run_ready_callbacks()
    for ack in table.acks:
        ack.set_result(None)
    await asyncio.gather(own, *waits[1:])


@dataclass
class _Message:
    topic: str
    partition: int
    generation_id: int


@dataclass
class _RawEvent:
    """What remember_all reads of a raw record's Faust event."""

    message: _Message


async def test_ids_of_a_partition_revoked_meanwhile_are_left_to_its_next_owner() -> None:
    # Its sends acknowledged only after a rebalance took the partition: the next owner
    # restored the table and reads the record again, and a state written from here would
    # land after its own in the changelog.
    table = _Table()
    dedupe, _ = _dedupe(table)
    kept_key, revoked_key = b"crm:case:3", b"crm:case:4"
    _, kept_ids = dedupe.fresh(kept_key, _events("k"), now=T0, platform="generic")
    _, revoked_ids = dedupe.fresh(revoked_key, _events("r"), now=T0, platform="generic")
    sent = [
        SentIds(kept_key, 31, kept_ids, T0, "generic", _event("raw", 31)),
        SentIds(revoked_key, 32, revoked_ids, T0, "generic", _event("raw", 32)),
    ]
    acks._order.forget([TP("raw", 32)], generation=5)
    remembering = asyncio.ensure_future(dedupe.remember_all(sent, []))
    await _run_ready_callbacks()
    assert [(partition, key) for partition, key, _ in table.changelog] == [(31, kept_key)]
    assert list(table.data) == [kept_key]
    table.acks[0].set_result(None)
    await remembering
    # Nothing held back as pending either: the record is no longer this worker's to drop.
    again, _ = dedupe.fresh(revoked_key, _events("r"), now=T0, platform="generic")
    assert [e.event_id for e, _ in again] == ["r"]


def _event(topic: str, partition: int) -> Any:
    return _RawEvent(_Message(topic, partition, generation_id=5))
