"""The ``comments`` and ``reconcile`` sources against the sandbox, their records through the
real normaliser."""

from __future__ import annotations

from connectors.salesforce.raw import RecordBody, decode_body
from connectors.salesforce.source_reconcile import field_digest
from schemas.models import Case, CaseStatus, EntityType, Message, Op
from tests.connectors.salesforce.source_harness import (
    build,
    driving,
    normalise,
    source_settings_for,
)
from tests.connectors.salesforce.test_cdc_subscribers import subscribed
from tests.sandboxes.salesforce.conftest import SalesforceEnv

LINK = "lnk_" + "c" * 32


async def test_450_case_comments_are_polled_exactly_once_across_a_restart(
    env: SalesforceEnv,
) -> None:
    settings = source_settings_for(env, "comments", batch_size=200, poll_seconds=0.2)
    case_id = await env.create("Case", {"Subject": "chatty", "Deskstream_Link_Id__c": LINK})
    bodies = [{"ParentId": case_id, "CommentBody": f"note {i}"} for i in range(450)]
    await env.create_many("CaseComment", bodies)  # three transactions: 200 share a stamp

    async with driving(await build(env, settings, "comments")) as first:
        head = (await first.next_batch()).records + (await first.next_batch()).records
        stored = first.position
    async with driving(await build(env, settings, "comments"), stored) as resumed:
        rest = await resumed.until_caught_up()
        await resumed.assert_quiet(0.6)  # two more polls: nothing new
        env.clock.advance(5)
        await env.create("CaseComment", {"ParentId": case_id, "CommentBody": "late"})
        (late,) = await resumed.records(1)

    records = head + rest
    ids = [r.delivery.delivery_id for r in records]
    assert len(ids) == len(set(ids)) == 450
    assert {r.key for r in [*records, late]} == {f"sf:case:{case_id}"}
    events = [e for r in records for e in normalise(settings, r)]
    assert {(e.op, e.source.entity_type, e.link_id) for e in events} == {
        (Op.CREATE, EntityType.MESSAGE, LINK)
    }
    texts = sorted(e.data.body_text or "" for e in events if isinstance(e.data, Message))
    assert texts == sorted(f"note {i}" for i in range(450))


async def test_reconciliation_recovers_a_dropped_status_change_as_a_change(
    env: SalesforceEnv,
) -> None:
    settings = source_settings_for(env, "reconcile", poll_seconds=0.2, window_seconds=600)
    cdc = source_settings_for(env, "cdc_case", transport="cometd")
    dropped = await env.create("Case", {"Subject": "will lose an event", "Status": "New"})
    quiet = await env.create("Case", {"Subject": "only notes change", "Status": "New"})
    async with (
        driving(await build(env, settings, "reconcile")) as reconcile,
        driving(await build(env, cdc, "cdc_case")) as changes,
    ):
        first = await reconcile.until_caught_up()
        await subscribed(env, "cometd")
        faults = env.sandbox.context.faults
        env.sandbox.context.set_faults(faults.model_copy(update={"cdc_drop_rate": 1.0}))
        env.clock.advance(2)
        await env.update("Case", dropped, {"Status": "Escalated"})
        await env.update("Case", quiet, {"Description": "not synced"})
        env.sandbox.context.set_faults(faults)
        await changes.assert_quiet(1.0)  # CDC said nothing of either
        second = await reconcile.until_caught_up()
        third = await reconcile.until_caught_up()

    assert env.sandbox.org.bus.counters.dropped == 2
    assert sorted(decode_body(r.delivery.body).record_id for r in first) == sorted([dropped, quiet])
    assert all(normalise(settings, r)[0].changed_fields == [] for r in first), "plain copies"
    (found,) = second
    body = decode_body(found.delivery.body)
    assert isinstance(body, RecordBody)
    assert (body.read, body.record_id, body.changed) == ("reconcile", dropped, ["Status"])
    (event,) = normalise(settings, found)
    assert (event.op, event.changed_fields) == (Op.UPDATE, ["status"])
    assert isinstance(event.data, Case)
    assert event.data.status is CaseStatus.ON_HOLD
    assert third == [], "a difference is sent once"


async def test_a_pass_from_a_stored_position_and_since_compares_with_the_memory(
    env: SalesforceEnv,
) -> None:
    """``deskstream reconcile --since``: one pass from the worker's stored position (its
    memory) reaching back to ``since``, further than the window."""
    settings = source_settings_for(env, "reconcile", poll_seconds=0.2, window_seconds=60)
    case = await env.create("Case", {"Subject": "solved while down", "Status": "New"})
    async with driving(await build(env, settings, "reconcile")) as reconcile:
        await reconcile.until_caught_up()
        stored = reconcile.position
    assert stored is not None
    env.clock.advance(2)
    changed_at = int(env.clock.now().timestamp())
    await env.update("Case", case, {"Status": "Escalated"})
    env.clock.advance(600)  # out of the window: the scheduled pass no longer sees it
    async with driving(await build(env, settings, "reconcile"), stored) as window:
        assert await window.until_caught_up() == []
    position = {**stored, "since": changed_at - 5}
    async with driving(await build(env, settings, "reconcile"), position) as once:
        (found,) = await once.until_caught_up()
    body = decode_body(found.delivery.body)
    assert isinstance(body, RecordBody)
    assert (body.record_id, body.changed) == (case, ["Status"])  # a change, not a plain copy


def test_a_field_digest_tells_which_field_changed() -> None:
    fields = ["Status", "Priority"]
    before = field_digest({"Status": "New", "Priority": "High"}, fields)
    after = field_digest({"Status": "Closed", "Priority": "High"}, fields)
    assert before.split(".")[1] == after.split(".")[1]
    assert before.split(".")[0] != after.split(".")[0]
    assert field_digest({"IsDeleted": True, "Status": "New"}, fields) == "-"
