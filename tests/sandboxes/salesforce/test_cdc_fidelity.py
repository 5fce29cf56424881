"""Change Data Capture as a real org sends it, pinned to Salesforce's documentation (the pages
are cited in ``sandboxes/salesforce/cdc.py``, ``cdc_diff.py`` and ``catalog.py``):
objects off the support list publish nothing, identical changes in one transaction merge into
one event listing every record id, long text updates arrive as unified diffs, and CometD
events carry neither Pub/Sub-only header fields nor unpopulated fields.

CometD through the real ``aiosfstream-ng`` client, Pub/Sub through our gRPC stubs."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import pytest
from aiosfstream_ng.replay import ReplayOption

from connectors.salesforce.cdc_events import apply_text_diff, bitmap_field_names, expand
from connectors.salesforce.pubsub import pubsub_api_pb2 as pb
from tests.sandboxes.salesforce.conftest import API, SalesforceEnv
from tests.sandboxes.salesforce.test_cometd import receive, streaming_client
from tests.sandboxes.salesforce.test_pubsub import Subscriber, decode, pubsub

#: ChangeEventHeader fields of a CometD event ("Change Event Message Structure").
COMETD_HEADER = {
    "entityName",
    "recordIds",
    "changeType",
    "changeOrigin",
    "transactionKey",
    "sequenceNumber",
    "commitTimestamp",
    "commitNumber",
    "commitUser",
    "changedFields",
}


def _case(**fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Case"}, **fields}


def long_description(lines: int = 30) -> str:
    """Well over 1,000 characters over many lines, so a one-line edit stays a small diff."""
    return "\n".join(
        f"Line {i}: the customer's export has failed again today." for i in range(lines)
    )


async def cometd_events(env: SalesforceEnv, channel: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` retained events of ``channel`` (replay -2), as CometD delivers them."""
    client = streaming_client(env, ReplayOption.ALL_EVENTS)
    await client.open()
    await client.subscribe(channel)
    messages = await receive(client, count)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.receive(), 1.0)  # and nothing more
    await client.close()
    return [m["data"]["payload"] for m in messages]


async def pubsub_events(
    env: SalesforceEnv, topic: str, count: int, after: int | None = None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(schema, record) of the first ``count`` events after replay id ``after`` (or all)."""
    start: dict[str, Any] = {"replay_preset": pb.EARLIEST}
    if after is not None:
        start = {"replay_preset": pb.CUSTOM, "replay_id": after.to_bytes(8, "big")}
    async with pubsub(env) as stub:
        subscriber = Subscriber(stub, env)
        await subscriber.fetch(topic_name=topic, num_requested=count, **start)
        events: list[pb.ConsumerEvent] = []
        while len(events) < count:
            events += (await subscriber.next()).events
        decoded = [await decode(stub, env, event) for event in events]
        subscriber.close()
    assert len(events) == count
    return decoded


# -- objects off the "Change Event Object Support" list --------------------------------------


async def test_case_comments_are_stored_but_publish_no_change_event(env: SalesforceEnv) -> None:
    case_id = await env.create("Case", {"Subject": "has comments"})
    before = env.sandbox.org.bus.latest_replay_id
    comment_id = await env.create("CaseComment", {"ParentId": case_id, "CommentBody": "hello"})
    await env.update("CaseComment", comment_id, {"CommentBody": "edited"})
    deleted = await env.http.delete(f"{API}/sobjects/CaseComment/{comment_id}")

    assert deleted.status_code == 204
    assert env.sandbox.org.bus.latest_replay_id == before
    assert [e.entity for e in env.sandbox.org.bus.events] == ["Case"]
    assert "CaseComment" not in env.sandbox.org.bus.layouts


# -- merged change events (recordIds) ----------------------------------------------------------


async def test_identical_collection_updates_merge_into_one_event(env: SalesforceEnv) -> None:
    ids = [await env.create("Case", {"Subject": f"case {i}"}) for i in range(3)]
    start = env.sandbox.org.bus.latest_replay_id
    updated = await env.http.patch(
        f"{API}/composite/sobjects",
        json={
            "records": [
                _case(Id=ids[0], Status="Closed"),
                _case(Id=ids[1], Priority="High"),
                _case(Id=ids[2], Status="Closed"),
            ]
        },
    )
    assert all(r["success"] for r in updated.json())

    payloads = (await cometd_events(env, "/data/CaseChangeEvent", 5))[3:]
    avro = await pubsub_events(env, "/data/CaseChangeEvent", 2, after=start)

    closed, prioritised = (p["ChangeEventHeader"] for p in payloads)
    # Same change (Status -> Closed, same instant): one event for both records.
    assert closed["recordIds"] == [ids[0], ids[2]]
    assert payloads[0]["Status"] == "Closed"
    assert prioritised["recordIds"] == [ids[1]]
    # Different changes of one transaction: separate events, one key, increasing sequence.
    assert closed["transactionKey"] == prioritised["transactionKey"]
    assert (closed["sequenceNumber"], prioritised["sequenceNumber"]) == (1, 2)
    assert [record["ChangeEventHeader"]["recordIds"] for _, record in avro] == [
        [ids[0], ids[2]],
        [ids[1]],
    ]
    # What a consumer must do: one change per id, nobody lost.
    expanded = [c for p in payloads for c in expand(p)]
    assert sorted(c.record_id for c in expanded) == sorted(ids)


async def test_collection_delete_is_one_event_for_every_record(env: SalesforceEnv) -> None:
    ids = [await env.create("Case", {"Subject": f"case {i}"}) for i in range(3)]
    start = env.sandbox.org.bus.latest_replay_id
    contact_id = await env.create("Contact", {"LastName": "Kept apart"})
    deleted = await env.http.delete(
        f"{API}/composite/sobjects", params={"ids": ",".join([*ids, contact_id])}
    )
    assert all(r["success"] for r in deleted.json())

    [(_, contact_created), (_, cases), (_, contact)] = await pubsub_events(
        env, "/data/ChangeEvents", 3, after=start
    )

    assert contact_created["ChangeEventHeader"]["changeType"] == "CREATE"
    assert cases["ChangeEventHeader"]["changeType"] == "DELETE"
    assert cases["ChangeEventHeader"]["recordIds"] == ids
    # Another object type is never merged with the cases.
    assert contact["ChangeEventHeader"]["entityName"] == "Contact"
    assert contact["ChangeEventHeader"]["recordIds"] == [contact_id]


async def test_collection_creates_are_one_event_per_record(env: SalesforceEnv) -> None:
    created = await env.http.post(
        f"{API}/composite/sobjects",
        json={"records": [{"attributes": {"type": "Contact"}, "LastName": "Twin"}] * 2},
    )
    ids = [r["id"] for r in created.json()]

    payloads = await cometd_events(env, "/data/ContactChangeEvent", 2)

    assert [p["ChangeEventHeader"]["recordIds"] for p in payloads] == [[ids[0]], [ids[1]]]
    assert [p["ChangeEventHeader"]["sequenceNumber"] for p in payloads] == [1, 2]


# -- long text diffs -------------------------------------------------------------------------


_DIFF_HEADER = re.compile(r"--- \n\+\+\+ (?P<hash>[0-9a-f]{64})\n@@ -\d+,\d+ \+\d+,\d+ @@\n")


async def test_long_description_updates_arrive_as_a_unified_diff(env: SalesforceEnv) -> None:
    original = long_description()
    edited = original.replace("Line 7: the customer's", "Line 7: the customer (Ann)'s")
    case_id = await env.create("Case", {"Subject": "long", "Description": original})
    await env.update("Case", case_id, {"Description": edited})
    short_id = await env.create("Case", {"Subject": "short", "Description": "x" * 900})
    await env.update("Case", short_id, {"Description": "y" * 900})

    created, updated, _, short = await cometd_events(env, "/data/CaseChangeEvent", 4)
    [(schema, record)] = (await pubsub_events(env, "/data/CaseChangeEvent", 4))[1:2]

    assert created["Description"] == original, "a create carries the full value"
    diff = updated["Description"]["diff"]
    match = _DIFF_HEADER.match(diff)
    assert match is not None, diff
    assert match["hash"] == hashlib.sha256(edited.encode()).hexdigest()
    assert "-Line 7: the customer's" in diff
    assert "Line 8" not in diff, "hunks carry no context lines"
    assert apply_text_diff(original, diff) == edited
    assert "Description" in updated["ChangeEventHeader"]["changedFields"]
    assert short["Description"] == "y" * 900, "under 1,000 characters the value is sent whole"
    header = record["ChangeEventHeader"]
    assert bitmap_field_names(schema, header["diffFields"]) == ["Description"]
    assert "Description" in bitmap_field_names(schema, header["changedFields"])
    assert record["Description"] == diff


async def test_a_rewritten_long_description_is_sent_whole(env: SalesforceEnv) -> None:
    original = long_description()
    rewritten = long_description(30).replace("export", "import")  # every line changes
    case_id = await env.create("Case", {"Subject": "rewrite", "Description": original})
    await env.update("Case", case_id, {"Description": rewritten})

    _, updated = await cometd_events(env, "/data/CaseChangeEvent", 2)

    assert updated["Description"] == rewritten


# -- the CometD rendering --------------------------------------------------------------------


async def test_cometd_events_carry_no_pubsub_only_header_fields_and_no_empty_fields(
    env: SalesforceEnv,
) -> None:
    case_id = await env.create("Case", {"Subject": "nulls", "SuppliedEmail": "a@b.example"})
    await env.update("Case", case_id, {"SuppliedEmail": None, "Priority": "Low"})

    created, updated = await cometd_events(env, "/data/CaseChangeEvent", 2)

    for payload in (created, updated):
        assert set(payload["ChangeEventHeader"]) == COMETD_HEADER
    # A create leaves unpopulated fields out instead of sending nulls.
    assert None not in created.values()
    assert "Description" not in created
    assert "ContactId" not in created
    # An update sends only changed fields; one set to null is an explicit null, listed in
    # changedFields (CometD has no nulledFields).
    assert "SuppliedEmail" in updated["ChangeEventHeader"]["changedFields"]
    assert updated["SuppliedEmail"] is None
    assert updated["Priority"] == "Low"
    assert "Subject" not in updated
    [change] = expand(updated)
    assert change.fields["SuppliedEmail"] is None
    assert not change.unknown
