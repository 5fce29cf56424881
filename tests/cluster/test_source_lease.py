"""One pull-based source in a cluster of two worker processes: the Zendesk incremental ticket
export, leased through the consumer group. Tickets are created continuously; the worker
running the source is killed (-9) mid-run; the other takes the lease over (its log and
``deskstream_source_running`` say so) and resumes from the stored position. Every ticket
reaches ``deskstream.events`` at least once, and every ticket version has exactly one event
id: a copy (the batch in flight at the kill, read again) carries the same id, and the sync
stage drops it (``duplicate_dropped`` in the link's audit).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from app.rehearsal import sync_stack
from connectors.base.links import case_link_id
from connectors.zendesk.normalize import EXPORTED_EVENT_TYPE
from schemas.models import Envelope
from tests.cluster.leases import canonical_events, kill_the_holder

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


def _exported(event: Envelope) -> bool:
    return event.source.event_type == EXPORTED_EVENT_TYPE


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
        takeover = await kill_the_holder(stack, SOURCE, kafka_bootstrap_servers)
        created_by_takeover = len(created)
        assert "cursor" in takeover.resumed
        await asyncio.sleep(6)
        stop.set()
        await creating

        events_topic = stack.settings.topic("events")
        deadline = time.monotonic() + 90
        while True:
            events = await canonical_events(kafka_bootstrap_servers, events_topic, _exported)
            seen = {int(e.source.entity_id) for e in events}
            if set(created) <= seen or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        missing = sorted(set(created) - seen)
        assert missing == [], f"tickets that never reached {events_topic}: {missing}"

        ids_per_version: dict[str | None, set[str]] = {}
        for event in events:
            ids_per_version.setdefault(event.source.source_event_id, set()).add(event.event_id)
        copies = Counter(e.event_id for e in events)
        duplicated = {eid: n for eid, n in copies.items() if n > 1}
        print(
            f"\n[source lease] tickets={len(created)} ({created_by_takeover} by the takeover) "
            f"takeover={takeover.seconds:.1f}s positions_stored={takeover.stored} "
            f"stored_before_kill={takeover.stored_before_kill} events={len(events)} "
            f"distinct={len(copies)} "
            f"versions={len(ids_per_version)} duplicated={len(duplicated)}"
        )
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
