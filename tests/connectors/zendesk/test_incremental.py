"""The incremental ticket export as a Source, against the Zendesk sandbox: where a first run
starts, positions that resume without loss, the same delivery (and event id) for a version
read twice, and how the normaliser reads an exported ticket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.base.links import case_link_id
from connectors.base.settings import SourceSettings
from connectors.base.source import SOURCE_HEADER, SourceBatch
from connectors.zendesk.incremental import ZendeskIncrementalTickets
from connectors.zendesk.ingest import ZendeskIngest
from connectors.zendesk.normalize import EXPORTED_EVENT_TYPE, ZendeskNormaliser
from schemas.models import Case, CaseStatus, Op
from tests.connectors.sources import read
from tests.sandboxes.zendesk.conftest import ZendeskEnv

START = 1735689600  # the manual clock's start


@pytest.fixture
async def source(zendesk: ZendeskEnv) -> AsyncIterator[ZendeskIncrementalTickets]:
    tickets = ZendeskIncrementalTickets(
        connector_id="zd",
        settings=zendesk.connector_settings(),
        source=SourceSettings(poll_seconds=0.01, start_lookback_seconds=300, batch_size=2),
        clock=lambda: zendesk.clock.now().timestamp(),
    )
    yield tickets
    await tickets.aclose()


def ticket_ids(batches: list[SourceBatch]) -> list[str]:
    return [r.key.rsplit(":", 1)[1] for b in batches for r in b.records]


async def test_a_first_run_starts_the_lookback_back_and_pages_with_positions(
    zendesk: ZendeskEnv, source: ZendeskIncrementalTickets
) -> None:
    zendesk.clock.advance(400)
    early = await zendesk.create_ticket(subject="before the lookback")
    zendesk.clock.advance(200)
    inside = [str((await zendesk.create_ticket(subject=f"t{i}"))["id"]) for i in range(3)]
    zendesk.clock.advance(120)  # past the export's held-back minute
    assert source.first_start_time() == int(zendesk.clock.now().timestamp()) - 300
    batches = await read(source, None)
    assert ticket_ids(batches) == inside  # 300 s back: the early ticket is not read
    assert str(early["id"]) not in ticket_ids(batches)
    assert [len(b.records) for b in batches] == [2, 1]  # batch_size per page
    assert all(set(b.position) == {"cursor"} for b in batches)
    record = batches[0].records[0]
    assert record.key == f"zd:case:{inside[0]}"  # the key webhook ingest gives a ticket
    assert record.delivery.headers == {SOURCE_HEADER: "zendesk.incremental_tickets"}


async def test_the_stored_position_resumes_with_later_changes_only(
    zendesk: ZendeskEnv, source: ZendeskIncrementalTickets
) -> None:
    zendesk.clock.advance(120)
    first = [str((await zendesk.create_ticket())["id"]) for _ in range(3)]
    zendesk.clock.advance(61)
    batches = await read(source, None)
    assert ticket_ids(batches) == first
    stored = batches[-1].position
    zendesk.clock.advance(5)
    await zendesk.http.put(f"/api/v2/tickets/{first[0]}", json={"ticket": {"status": "solved"}})
    later = str((await zendesk.create_ticket())["id"])
    zendesk.clock.advance(61)
    assert ticket_ids(await read(source, stored)) == [first[0], later]


async def test_a_version_read_twice_is_the_same_delivery_and_event(
    zendesk: ZendeskEnv, source: ZendeskIncrementalTickets
) -> None:
    zendesk.clock.advance(120)
    await zendesk.create_ticket()
    zendesk.clock.advance(61)
    once, twice = await read(source, None), await read(source, None)
    first, again = once[0].records[0].delivery, twice[0].records[0].delivery
    assert first.delivery_id == again.delivery_id
    normaliser = ZendeskNormaliser(connector_id="zd", settings=zendesk.connector_settings())
    assert normaliser.normalise(first)[0].event_id == normaliser.normalise(again)[0].event_id


async def test_the_normaliser_reads_exported_tickets_as_observations(
    zendesk: ZendeskEnv, source: ZendeskIncrementalTickets
) -> None:
    zendesk.clock.advance(120)
    new = await zendesk.create_ticket(subject="new", priority="high")
    changed = await zendesk.create_ticket(subject="changed")
    gone = await zendesk.create_ticket(subject="gone")
    zendesk.clock.advance(5)
    await zendesk.http.put(f"/api/v2/tickets/{changed['id']}", json={"ticket": {"status": "open"}})
    await zendesk.http.delete(f"/api/v2/tickets/{gone['id']}")
    zendesk.clock.advance(61)
    normaliser = ZendeskNormaliser(connector_id="zd", settings=zendesk.connector_settings())
    events = {
        e.source.entity_id: e
        for b in await read(source, None)
        for r in b.records
        for e in normaliser.normalise(r.delivery)
    }
    created = events[str(new["id"])]
    assert (created.op, created.source.event_type) == (Op.CREATE, EXPORTED_EVENT_TYPE)
    assert {"subject", "status", "priority"} <= set(created.changed_fields)
    update = events[str(changed["id"])]
    assert (update.op, update.changed_fields) == (Op.UPDATE, [])  # a copy of the ticket
    assert isinstance(update.data, Case)
    assert update.data.status is CaseStatus.OPEN
    assert events[str(gone["id"])].op is Op.DELETE
    assert created.link_id == case_link_id("zendesk", "zd", str(new["id"]))


def test_no_webhook_can_pass_for_an_exported_ticket() -> None:
    # The header that marks a pulled record is never kept from a webhook.
    assert SOURCE_HEADER not in ZendeskIngest.kept_headers
