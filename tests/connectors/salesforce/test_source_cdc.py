"""The ``cdc_case`` source over both transports against the sandbox: its raw records go
through the real normaliser; positions resume; gap events and an expired replay id become
re-read records."""

from __future__ import annotations

import json
from typing import cast

import pytest

from connectors.base.source import SOURCE_HEADER, RawRecord
from connectors.salesforce.raw import RecordBody, decode_body
from schemas.models import ActorKind, Case, CaseStatus, EntityType, Op, Priority
from tests.connectors.salesforce.cdc_harness import Transport
from tests.connectors.salesforce.sink_harness import open_org
from tests.connectors.salesforce.source_harness import (
    OTHER_USER,
    build,
    driving,
    normalise,
    source_settings_for,
)
from tests.connectors.salesforce.test_cdc_subscribers import subscribed
from tests.sandboxes.salesforce.conftest import SalesforceEnv, StartSandbox


@pytest.fixture(params=["pubsub", "cometd"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return cast(Transport, request.param)


def _subjects(records: list[RawRecord]) -> list[str]:
    return [json.loads(r.delivery.body)["fields"]["Subject"] for r in records]


async def test_a_persons_case_update_normalises_with_its_changed_fields(
    env: SalesforceEnv, transport: Transport
) -> None:
    settings = source_settings_for(env, "cdc_case", transport=transport)
    async with driving(await build(env, settings, "cdc_case")) as driver:
        await subscribed(env, transport)
        case_id = await env.create("Case", {"Subject": "Printer on fire", "Status": "New"})
        await env.update(
            "Case", case_id, {"Status": "Escalated", "Priority": "Low", "AI_Handoff_Reason__c": "x"}
        )
        created, updated = await driver.records(2)
        stored = driver.stored

    assert updated.key == created.key == f"sf:case:{case_id}"
    assert updated.delivery.headers == {SOURCE_HEADER: "salesforce.cdc_case"}
    assert stored >= 2, "each batch's replay position was stored"
    (made,) = normalise(settings, created)
    (event,) = normalise(settings, updated)
    assert (made.op, event.op) == (Op.CREATE, Op.UPDATE)
    assert sorted(event.changed_fields) == ["custom_fields.ai_handoff_reason", "priority", "status"]
    assert event.source.actor.kind is ActorKind.AGENT
    assert isinstance(event.data, Case)
    assert (event.data.status, event.data.priority) == (CaseStatus.ON_HOLD, Priority.LOW)
    assert event.data.subject == "Printer on fire", "the record read after the event"


async def test_resuming_from_the_stored_position_yields_exactly_the_later_changes(
    env: SalesforceEnv, transport: Transport
) -> None:
    settings = source_settings_for(env, "cdc_case", transport=transport)
    async with driving(await build(env, settings, "cdc_case")) as first:
        await subscribed(env, transport)
        for i in range(3):
            await env.create("Case", {"Subject": f"before {i}"})
        await first.records(3)
        stored = first.position
    assert stored is not None
    assert stored["replay"]["transport"] == transport

    for i in range(4):
        await env.create("Case", {"Subject": f"after {i}"})
    async with driving(await build(env, settings, "cdc_case"), stored) as resumed:
        missed = await resumed.records(4)
        await resumed.assert_quiet(1.0)

    assert _subjects(missed) == [f"after {i}" for i in range(4)]


async def test_our_own_write_normalises_as_the_integration(
    env: SalesforceEnv, transport: Transport
) -> None:
    settings = source_settings_for(env, "cdc_case", transport=transport)
    case_id = await env.create("Case", {"Subject": "ours", "Status": "New"})
    async with (
        open_org(env, service_account_id=OTHER_USER) as org,
        driving(await build(env, settings, "cdc_case")) as driver,
    ):
        await subscribed(env, transport)
        await org.sink.client.update("Case", case_id, {"Status": "Working"})
        await env.update("Case", case_id, {"Status": "Closed"})
        ours, theirs = await driver.records(2)

    (echo,) = normalise(settings, ours)
    (person,) = normalise(settings, theirs)
    assert "client=deskstream" in json.loads(ours.delivery.body)["header"]["changeOrigin"]
    assert (echo.source.actor.kind, echo.changed_fields) == (ActorKind.INTEGRATION, ["status"])
    assert person.source.actor.kind is ActorKind.AGENT


async def test_gap_and_overflow_events_become_re_read_records(
    env: SalesforceEnv, transport: Transport
) -> None:
    settings = source_settings_for(env, "cdc_case", transport=transport)
    async with driving(await build(env, settings, "cdc_case")) as driver:
        await subscribed(env, transport)
        ids = [await env.create("Case", {"Subject": f"case {i}"}) for i in range(3)]
        await driver.records(3)
        before = driver.position
        env.sandbox.publish_gap("Case", "GAP_UPDATE", ids[:2])
        gap = await driver.records(2)
        assert driver.position == before, "a crash now would re-read them again"
        after = await driver.next_batch()
        assert after.records == []
        assert driver.position != before, "then the gap's own position"
        env.sandbox.publish_gap("Case", "GAP_OVERFLOW", [])
        overflow = await driver.records(3)
        await driver.assert_quiet(0.5)

    for records, expected in ((gap, ids[:2]), (overflow, ids)):
        bodies = [decode_body(r.delivery.body) for r in records]
        assert all(isinstance(b, RecordBody) and b.read == "reread" for b in bodies)
        assert sorted(b.record_id for b in bodies) == sorted(expected)
    events = [e for r in gap for e in normalise(settings, r)]
    assert [(e.op, e.changed_fields, e.source.entity_type) for e in events] == [
        (Op.UPDATE, [], EntityType.CASE)
    ] * 2


async def test_an_expired_replay_id_re_reads_what_changed_since_then_goes_on(
    start_sandbox: StartSandbox, transport: Transport
) -> None:
    async with start_sandbox(session_timeout_s=100 * 3600) as env:
        settings = source_settings_for(env, "cdc_case", transport=transport)
        async with driving(await build(env, settings, "cdc_case")) as driver:
            await subscribed(env, transport)
            await env.create("Case", {"Subject": "seen"})
            await driver.records(1)
            stored = driver.position
        await subscribed(env, transport, streams=0)  # closing the source ended its stream
        # Changed while no worker ran: their events leave the retention with the stored id.
        missed = [await env.create("Case", {"Subject": f"missed {i}"}) for i in range(2)]
        env.clock.advance(72 * 3600 + 1)

        async with driving(await build(env, settings, "cdc_case"), stored) as resumed:
            reread = await resumed.records(3)
            assert resumed.position == stored, "nothing new yet: the old position stays"
            await subscribed(env, transport)
            await env.create("Case", {"Subject": "fresh"})
            (fresh,) = await resumed.records(1)
            moved = resumed.position

    bodies = [decode_body(r.delivery.body) for r in reread]
    assert all(isinstance(b, RecordBody) and b.read == "reread" for b in bodies)
    assert set(missed) <= {b.record_id for b in bodies}
    assert _subjects([fresh]) == ["fresh"]
    assert moved is not None
    assert moved != stored
