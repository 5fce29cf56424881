"""Who holds a pull-based source in a cluster of worker processes, and where it resumed: the
worker's ``deskstream_source_running`` gauge, its ``source lease acquired`` log lines and the
positions stored on the ``sources`` topic (shared by the source takeover tests)."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.rehearsal import SyncStack
from app.source_positions import slot_of
from app.worker_process import RunningWorker
from schemas.codec import decode
from schemas.errors import DeskstreamError
from schemas.models import Envelope

__all__ = [
    "Takeover",
    "acquired",
    "canonical_events",
    "holder",
    "kill_the_holder",
    "log_count",
    "raw_trail",
    "recovery_trail",
    "running",
    "steps_after",
    "stored_positions",
    "survivor_ready",
]

#: seconds the survivor of a kill gets to be ready again: the session timeout (10 s), the
#: rebalance, and a stalled recovery's re-read (10 s) with room to spare on a loaded machine
READY_WITHIN_S = 60.0


def running(worker: RunningWorker, source: str) -> bool:
    """``deskstream_source_running{source="<source>"} 1.0`` on the worker's /metrics."""
    try:
        text = httpx.get(f"{worker.url}/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return False
    line = f'deskstream_source_running{{source="{source}"}} 1.0'
    return any(row.strip() == line for row in text.splitlines())


async def holder(stack: SyncStack, source: str, within: float = 90.0) -> RunningWorker:
    """The live worker running ``source``; a failure with the workers' logs otherwise."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for worker in stack.workers:
            if worker.alive and await asyncio.to_thread(running, worker, source):
                return worker
        await asyncio.sleep(0.5)
    tails = "\n".join(w.log_tail(1500) for w in stack.workers)
    raise AssertionError(f"no worker runs {source} within {within:.0f} s; logs:\n{tails}")


def acquired(worker: RunningWorker, source: str) -> list[tuple[float, Any]]:
    """(wall time, position) of each ``source lease acquired`` line of the worker's log."""
    found = []
    for line in worker.log.read_text(errors="replace").splitlines():
        if f"source lease acquired source={source} " not in line:
            continue
        entry = json.loads(line)
        stated = entry["message"].partition(" position=")[2]
        position = None if stated.startswith("none") else ast.literal_eval(stated)
        found.append((datetime.fromisoformat(entry["time"]).timestamp(), position))
    return found


async def lease_since(
    worker: RunningWorker, source: str, wall: float, within: float = 30.0
) -> tuple[float, Any]:
    """(wall time, position) of ``worker``'s first ``source`` lease acquired after ``wall``.
    The runner sets ``deskstream_source_running`` as it takes the lease and logs the line
    only once it has read the stored position, so a holder seen by its metric may not have
    logged it yet."""
    deadline = time.monotonic() + within
    while True:
        later = [entry for entry in acquired(worker, source) if entry[0] > wall]
        if later:
            return later[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{source}: no lease acquired after the kill within {within} s")
        await asyncio.sleep(0.5)


async def stored_positions(
    bootstrap: str, topic: str, slots: int, source: str
) -> list[tuple[float, Any]]:
    """(Kafka timestamp, position) of every position record of ``source`` so far, in offset
    order (read up to the slot's end offset of now: the holder keeps storing)."""
    tp = TopicPartition(topic, slot_of(source, slots))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    stored: list[tuple[float, Any]] = []
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        while await consumer.position(tp) < end:
            for r in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if r.key == source.encode():
                    stored.append((r.timestamp / 1000, json.loads(r.value or b"{}")["position"]))
    finally:
        await consumer.stop()
    return stored


async def canonical_events(
    bootstrap: str, topic: str, keep: Callable[[Envelope], bool]
) -> list[Envelope]:
    """Every event on the canonical topic ``keep`` accepts, read to its end of now."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    events: list[Envelope] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                return events
            for records in batch.values():
                for record in records:
                    event = decode(record.value or b"")
                    if isinstance(event, Envelope) and keep(event):
                        events.append(event)
    finally:
        await consumer.stop()


async def raw_trail(bootstrap: str, topic: str, group: str, needles: Iterable[str]) -> str:
    """Where each of ``needles`` (text of a raw record's body, such as a CDC transaction key)
    stands on the raw topic: every record holding it (partition, offset, Kafka timestamp),
    and each such partition's end and the offset ``group`` committed: what a missing-events
    failure needs to tell a record never written from one normalize skipped or dropped."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    wanted = {needle: needle.encode() for needle in needles}
    found: dict[str, list[tuple[int, int, float]]] = {needle: [] for needle in wanted}
    try:
        while batch := await consumer.getmany(timeout_ms=2000, max_records=5000):
            for tp, records in batch.items():
                for r in records:
                    for needle, raw in wanted.items():
                        if raw in (r.value or b""):
                            found[needle].append((tp.partition, r.offset, r.timestamp / 1000))
        partitions = {TopicPartition(topic, p) for spots in found.values() for p, _, _ in spots}
        ends = {tp: consumer.highwater(tp) for tp in partitions}  # from the fetches just made
    finally:
        await consumer.stop()
    committed: dict[int, int | None] = {}
    if partitions:
        group_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await group_reader.start()
        try:
            for tp in partitions:
                committed[tp.partition] = await group_reader.committed(tp)
        finally:
            await group_reader.stop()
    lines = []
    for needle, spots in found.items():
        where = ", ".join(
            f"p{p}@{offset} ({datetime.fromtimestamp(at).strftime('%H:%M:%S.%f')[:-3]})"
            for p, offset, at in spots
        )
        lines.append(f"{needle}: {where or 'on no raw record'}")
    for tp in sorted(partitions):
        lines.append(
            f"{topic}[{tp.partition}] end={ends.get(tp)} committed by {group}="
            f"{committed.get(tp.partition)}"
        )
    return "\n".join(lines)


#: the survivor's log lines that mark a takeover's steps, in their order
_STEPS = (
    ("noticed", "Heartbeat failed"),  # the group is rebalancing: the session expired
    ("revoked", "partitions revoked"),  # its own revocation done (lanes, settle, commit)
    ("assigned", "Executing _on_partitions_assigned"),
)


def steps_after(worker: RunningWorker, source: str, wall: float) -> dict[str, float]:
    """Seconds after ``wall`` (the kill) of the first log line of each takeover step on
    ``worker``, the source's ``lease acquired`` last (a step not logged is left out)."""
    found: dict[str, float] = {}
    marks = [*_STEPS, ("lease", f"source lease acquired source={source} ")]
    for at, entry in _entries_since(worker, wall):
        for step, text in marks:
            if step not in found and str(entry.get("message", "")).startswith(text):
                found[step] = at
    return found


def log_count(worker: RunningWorker, text: str) -> int:
    """Lines of the worker's log that contain ``text``."""
    return sum(text in line for line in worker.log.read_text(errors="replace").splitlines())


def recovery_trail(worker: RunningWorker, wall: float, limit: int = 40) -> str:
    """The last ``limit`` warnings, errors and table-recovery lines ``worker`` logged after
    ``wall``: what a failed takeover test prints, so a stalled recovery (Faust's "No event
    received for active tp") can be read from the failure itself, not from a temp folder
    pytest has since rotated away."""
    kept = [
        f"+{at:.1f}s {entry.get('level')} {entry.get('logger')}: {entry.get('message')}"
        for at, entry in _entries_since(worker, wall)
        if entry.get("level") in ("warning", "error", "critical")
        or "recover" in str(entry.get("message", "")).lower()
    ]
    return "\n".join(kept[-limit:]) or "(nothing logged)"


def _entries_since(worker: RunningWorker, wall: float) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds after ``wall``, record) of each JSON log record of ``worker`` from ``wall`` on."""
    for line in worker.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not a log record (a traceback's lines, faust's banner)
        at = datetime.fromisoformat(entry["time"]).timestamp() - wall
        if at >= 0:
            yield at, entry


@dataclass(frozen=True)
class Takeover:
    #: seconds from the kill until the survivor reported the source running
    seconds: float
    #: the position the survivor resumed from, the newest stored before the kill
    resumed: Any
    #: positions stored in all, and before the kill
    stored: int
    stored_before_kill: int
    #: wall time of the kill
    killed_at: float
    #: seconds after the kill of each step on the survivor (``steps_after``)
    steps: dict[str, float]
    #: the worker that took the source over
    survivor: RunningWorker
    #: seconds from the kill until the survivor was ready again (its tables recovered)
    ready_after: float

    def describe(self) -> str:
        steps = " ".join(f"{name}={at:.1f}s" for name, at in self.steps.items())
        return f"takeover={self.seconds:.1f}s ({steps}) ready_after={self.ready_after:.1f}s"


async def kill_the_holder(
    stack: SyncStack, source: str, bootstrap: str, *, after: float = 6.0
) -> Takeover:
    """Wait until exactly one worker runs ``source``, let it work ``after`` seconds, kill it
    (-9) and wait for the other to take over: from the newest position stored before the
    kill (the killed worker's last one: the survivor stores only after it acquires), not
    from a first run. The session timeout (10 s) for the group to notice, a heartbeat for
    the survivor to hear of it, then a rebalance: the time is returned, never asserted."""
    first = await holder(stack, source)
    survivor = next(w for w in stack.workers if w is not first)
    assert not await asyncio.to_thread(running, survivor, source)  # exactly one holds it
    await asyncio.sleep(after)  # positions stored, a batch in flight
    await asyncio.to_thread(first.kill)
    killed_at, killed_wall = time.monotonic(), time.time()
    second = await holder(stack, source, within=90)
    seconds = time.monotonic() - killed_at
    assert second is survivor
    _, resumed = await lease_since(survivor, source, killed_wall)
    stored = await stored_positions(
        bootstrap, stack.settings.topic("sources"), stack.settings.partitions, source
    )
    before = [position for at, position in stored if at <= killed_wall]
    assert before, f"the killed worker stored no position of {source} before the kill"
    assert resumed == before[-1], (resumed, before[-3:])
    steps = steps_after(survivor, source, killed_wall)
    ready_after = await survivor_ready(survivor, killed_at, killed_wall)
    return Takeover(
        seconds, resumed, len(stored), len(before), killed_wall, steps, survivor, ready_after
    )


async def survivor_ready(survivor: RunningWorker, killed_at: float, killed_wall: float) -> float:
    """Wait until the survivor, which has taken over the killed worker's partitions, is ready
    again (its table recovery finished: a stalled one is re-read after
    ``app.faust_recovery.STALL_AFTER_S``); the seconds since the kill. Not ready in
    ``READY_WITHIN_S``: the failure shows the survivor's recovery trail."""
    try:
        await asyncio.to_thread(survivor.wait_ready, READY_WITHIN_S)
    except DeskstreamError as exc:
        raise AssertionError(
            f"the survivor was not ready again after the takeover: {exc}; its log after the "
            f"kill:\n{recovery_trail(survivor, killed_wall)}"
        ) from exc
    return time.monotonic() - killed_at
