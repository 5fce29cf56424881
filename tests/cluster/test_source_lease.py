"""One pull-based source in a cluster of two worker processes: the Zendesk incremental ticket
export, leased through the consumer group. Tickets are created continuously; the worker
running the source is killed (-9) mid-run; the other takes the lease over (its log and
``deskstream_source_running`` say so) and resumes from the newest position stored before the
kill (read back from ``deskstream.sources``), not from the first-run lookback. Every ticket
reaches ``deskstream.events`` at least once, and every ticket version has exactly one event
id. Copies have two origins, counted apart: the source re-reads at most one batch per handover
(raw deliveries written twice), and the normalise stage re-reads the raw records the killed
worker had not committed (events emitted twice). Each copy carries the same event id, and the
sync stage drops it (``duplicate_dropped`` in the link's audit).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from app.rehearsal import sync_stack
from connectors.base.links import case_link_id
from connectors.base.source import SOURCE_HEADER
from connectors.zendesk.normalize import EXPORTED_EVENT_TYPE
from schemas.codec import decode
from schemas.models import Envelope, RawDelivery
from tests.cluster.leases import (
    acquired,
    holder,
    lease_since,
    log_count,
    recovery_trail,
    running,
    steps_after,
    stored_positions,
    survivor_ready,
)

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(420)]

SOURCE = "zendesk.tickets"
SOURCE_ENV = {
    "DESKSTREAM_CONNECTORS__zendesk__SOURCES__tickets__POLL_SECONDS": "1",
    "DESKSTREAM_CONNECTORS__zendesk__SOURCES__tickets__START_LOOKBACK_SECONDS": "600",
    "DESKSTREAM_CONNECTORS__zendesk__SOURCES__tickets__BATCH_SIZE": "3",  # many positions
    "DESKSTREAM_CONNECTORS__zendesk__SOURCES__tickets__REQUESTS_PER_MINUTE": "600",
    "DESKSTREAM_SOURCE_MAX_BACKOFF_SECONDS": "2",
}
#: the sandbox's export: 1 s of held-back lag instead of 60, and room for a fast poll
EXPORT = {"incremental_export_lag_s": 1.0, "incremental_export_per_minute": 600}


async def _decoded(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` so far, decoded (read until 2 s bring nothing new)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        found: list[Any] = []
        while batch := await consumer.getmany(timeout_ms=2000, max_records=5000):
            found += [decode(r.value or b"") for records in batch.values() for r in records]
        return found
    finally:
        await consumer.stop()


async def _exported_events(bootstrap: str, topic: str) -> list[Envelope]:
    """Every event on the canonical topic made from an exported ticket."""
    return [
        event
        for event in await _decoded(bootstrap, topic)
        if isinstance(event, Envelope) and event.source.event_type == EXPORTED_EVENT_TYPE
    ]


async def _source_writes(bootstrap: str, topic: str) -> Counter[str]:
    """How many times the source wrote each delivery id to the raw topic."""
    return Counter(
        delivery.delivery_id
        for delivery in await _decoded(bootstrap, topic)
        if isinstance(delivery, RawDelivery) and SOURCE_HEADER in delivery.headers
    )


async def test_the_source_survives_its_worker_killed_without_loss(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    async with sync_stack(
        kafka_bootstrap_servers,
        tmp_path,
        workers=2,
        partitions=4,
        name="source-lease",
        extra_env=SOURCE_ENV,
        zendesk_config=EXPORT,
    ) as stack:
        created: list[int] = []
        stop = asyncio.Event()

        async def create_tickets() -> None:
            while not stop.is_set():
                body = {"subject": f"polled {len(created)}", "comment": {"body": "hello"}}
                response = await stack.zd_agent.post("/api/v2/tickets", json={"ticket": body})
                assert response.status_code == 201, response.text
                created.append(int(response.json()["ticket"]["id"]))
                await asyncio.sleep(0.25)

        creating = asyncio.create_task(create_tickets())
        first = await holder(stack, SOURCE)
        survivor = next(w for w in stack.workers if w is not first)
        assert not await asyncio.to_thread(running, survivor, SOURCE)  # exactly one holds it
        await asyncio.sleep(6)  # batches stored, a page in flight
        await asyncio.to_thread(first.kill)
        killed_at, killed_wall, created_at_kill = time.monotonic(), time.time(), len(created)
        second = await holder(stack, SOURCE, within=90)
        takeover_s = time.monotonic() - killed_at
        assert second is survivor
        ready_after = await survivor_ready(survivor, killed_at, killed_wall)
        # It resumed from the newest position stored before the kill (the killed worker's
        # last one: the survivor stores only after it acquires), not from a first run.
        _, resumed = await lease_since(survivor, SOURCE, killed_wall)
        stored = await stored_positions(
            kafka_bootstrap_servers,
            stack.settings.topic("sources"),
            stack.settings.partitions,
            SOURCE,
        )
        before = [position for at, position in stored if at <= killed_wall]
        assert before, "the killed worker stored no position before the kill"
        assert resumed == before[-1], (resumed, before[-3:])
        assert "cursor" in resumed
        await asyncio.sleep(6)
        stop.set()
        await creating

        events_topic = stack.settings.topic("events")
        deadline = time.monotonic() + 90
        while True:
            events = await _exported_events(kafka_bootstrap_servers, events_topic)
            seen = {int(e.source.entity_id) for e in events}
            if set(created) <= seen or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        missing = sorted(set(created) - seen)
        assert missing == [], (
            f"tickets that never reached {events_topic}: {missing}; the survivor's log "
            f"after the kill:\n{recovery_trail(survivor, killed_wall)}"
        )

        ids_per_version: dict[str | None, set[str]] = {}
        for event in events:
            ids_per_version.setdefault(event.source.source_event_id, set()).add(event.event_id)
        copies = Counter(e.event_id for e in events)
        duplicated = {eid: n for eid, n in copies.items() if n > 1}
        # Raw records are written twice: the source re-reads what it published after its
        # last stored position (at most one batch per handover: the kill, and any rebalance
        # while the workers joined). Normalize drops the events of those copies (same key,
        # same ids); a copy on the canonical topic is left only by its crash window (the
        # killed worker had sent an event and its id's table record was not acknowledged).
        writes = await _source_writes(kafka_bootstrap_servers, stack.settings.topic("raw"))
        reread = sum(n - 1 for n in writes.values())
        leases = sum(len(acquired(w, SOURCE)) for w in stack.workers)
        failed = sum(log_count(w, f"source failed source={SOURCE} ") for w in stack.workers)
        steps = {k: round(v, 1) for k, v in steps_after(survivor, SOURCE, killed_wall).items()}
        print(
            f"\n[source lease] tickets={len(created)} (killed after {created_at_kill}) "
            f"takeover={takeover_s:.1f}s ready_after={ready_after:.1f}s "
            f"recovery_stalls={log_count(survivor, 'table recovery stalled')} "
            f"steps={steps} "
            f"positions_stored={len(stored)} "
            f"stored_before_kill={len(before)} leases={leases} failed_runs={failed} "
            f"raw_written={sum(writes.values())} "
            f"raw_reread_by_source={reread} events={len(events)} distinct={len(copies)} "
            f"versions={len(ids_per_version)} duplicated_events={len(duplicated)}"
        )
        batch_size = int(SOURCE_ENV["DESKSTREAM_CONNECTORS__zendesk__SOURCES__tickets__BATCH_SIZE"])
        # one page (a batch) per handover or failed run, each restarting from the stored position
        assert reread <= batch_size * (leases - 1 + failed), (reread, leases, failed)
        # A version read twice is one event id: the dedupe's key sees it once.
        assert all(len(ids) == 1 for ids in ids_per_version.values())
        assert len(copies) == len(ids_per_version) >= len(created)
        # Every copy that did reach the topic was dropped by the sync stage.
        by_id = {e.event_id: e for e in events}
        for event_id in duplicated:
            ticket = by_id[event_id].source.entity_id
            audit = await stack.audit(case_link_id("zendesk", "zendesk", ticket))
            decisions = [r.decision for r in audit if r.event_id == event_id]
            assert "duplicate_dropped" in decisions, (event_id, decisions)

        # A deploy's SIGTERM to the survivor, still busy with the takeover's backlog: a clean
        # stop (status 0, nothing at critical level), the batches it leaves unsent to be read
        # again by the next owner, not a crash on the way out.
        await asyncio.to_thread(survivor.stop)
        assert survivor.process.returncode == 0, survivor.log_tail()
        assert survivor.critical_lines() == []
