"""Both CDC subscribers against the in-process Salesforce sandbox, one test per behaviour,
each run over the Pub/Sub API and the Streaming API (CometD)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import pytest

from connectors.salesforce.cdc_events import apply_text_diff
from connectors.salesforce.cdc_items import OVERFLOW_LOOKBACK, DecodedChange, Reread
from connectors.salesforce.cdc_replay import replay_position_from_json
from tests.connectors.salesforce.cdc_harness import Reader, Transport, open_subscriber
from tests.connectors.salesforce.sandbox_tokens import SandboxTokens
from tests.sandboxes.salesforce.conftest import API, SalesforceEnv, StartSandbox
from tests.sandboxes.salesforce.test_cdc_fidelity import long_description

CASES = "/data/CaseChangeEvent"
ALL = "/data/ChangeEvents"


@pytest.fixture(params=["pubsub", "cometd"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return cast(Transport, request.param)


def _streams(env: SalesforceEnv, transport: Transport) -> int:
    if transport == "pubsub":
        return env.sandbox.pubsub.streams
    return sum(bool(c.cursors) for c in env.sandbox.cometd.clients.values())


def _opened(env: SalesforceEnv, transport: Transport) -> int:
    """Subscriptions opened so far (CometD drops a closed client's cursors at once, so its
    open ones tell; a Pub/Sub stream can outlive its cancelled call until the next keepalive)."""
    return env.sandbox.pubsub.opened if transport == "pubsub" else _streams(env, transport)


async def subscribed(env: SalesforceEnv, transport: Transport, streams: int = 1) -> None:
    """Wait until the sandbox holds ``streams`` subscriptions (a LATEST start is fixed then)."""
    await _until(lambda: _streams(env, transport), streams, f"{transport} subscriptions")


async def _until(count: Callable[[], int], expected: int, what: str) -> None:
    for _ in range(200):
        if count() == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count()} {what}, not {expected}")


async def test_changes_arrive_decoded_with_their_header(
    env: SalesforceEnv, transport: Transport
) -> None:
    async with open_subscriber(transport, env, SandboxTokens.of(env)) as subscriber:
        reader = Reader(subscriber, ALL, None)
        await subscribed(env, transport)
        contact_id = await env.create(
            "Contact",
            {"FirstName": "Ada", "LastName": "Lovelace", "Title": "Countess"},
            **{"Sforce-Call-Options": "client=deskstream"},
        )
        await env.update("Contact", contact_id, {"FirstName": "Augusta", "Title": None})
        created, updated = await reader.changes(2)
        await reader.close()

    header = created.header
    assert (header.entity, header.change_type, header.record_ids) == (
        "Contact",
        "CREATE",
        (contact_id,),
    )
    assert header.change_origin == "com/salesforce/api/rest/59.0;client=deskstream"
    assert header.commit_user == env.sandbox.org.user_id
    assert header.commit_timestamp == env.clock.now().replace(microsecond=0)
    assert header.transaction_key
    assert header.sequence_number == 1
    assert created.record.fields["Name.FirstName"] == "Ada"
    assert created.record.fields["Title"] == "Countess"
    assert updated.header.change_type == "UPDATE"
    assert sorted(updated.header.changed_fields) == ["LastModifiedDate", "Name.FirstName", "Title"]
    assert updated.header.nulled_fields == ("Title",)
    assert updated.header.diff_fields == ()
    assert updated.record.fields["Name.FirstName"] == "Augusta"
    assert updated.record.fields["Title"] is None
    assert "Name.LastName" not in updated.record.fields, "unchanged fields are not values"
    assert updated.header.transaction_key != header.transaction_key


async def test_a_long_text_diff_arrives_as_a_diff_the_caller_applies(
    env: SalesforceEnv, transport: Transport
) -> None:
    original = long_description()
    edited = original.replace("Line 7: the customer's", "Line 7: the customer (Ann)'s")
    async with open_subscriber(transport, env, SandboxTokens.of(env)) as subscriber:
        reader = Reader(subscriber, CASES, None)
        await subscribed(env, transport)
        case_id = await env.create("Case", {"Subject": "long", "Description": original})
        await env.update("Case", case_id, {"Description": edited})
        _, updated = await reader.changes(2)
        await reader.close()

    assert updated.header.diff_fields == ("Description",)
    assert "Description" in updated.header.changed_fields
    assert "Description" not in updated.record.fields
    assert apply_text_diff(original, updated.record.diffs["Description"]) == edited


async def test_resuming_from_a_stored_position_delivers_exactly_what_came_after(
    env: SalesforceEnv, transport: Transport
) -> None:
    async with open_subscriber(transport, env, SandboxTokens.of(env)) as subscriber:
        reader = Reader(subscriber, CASES, None)
        await subscribed(env, transport)
        for i in range(3):
            await env.create("Case", {"Subject": f"before {i}"})
        await reader.changes(3)
        assert reader.position is not None
        stored = reader.position.to_json()
        await reader.close()

        for i in range(4):
            await env.create("Case", {"Subject": f"after {i}"})
        resumed = Reader(subscriber, CASES, replay_position_from_json(stored))
        missed = await resumed.changes(4)
        await resumed.assert_quiet(1.0)
        await resumed.close()

    assert [c.record.fields["Subject"] for c in missed] == [f"after {i}" for i in range(4)]


async def test_flow_control_never_holds_more_than_max_in_flight_unacked(
    env: SalesforceEnv, transport: Transport
) -> None:
    async with open_subscriber(
        transport, env, SandboxTokens.of(env), max_in_flight=3
    ) as subscriber:
        reader = Reader(subscriber, CASES, None, auto_ack=False)
        await subscribed(env, transport)
        for i in range(10):
            await env.create("Case", {"Subject": f"case {i}"})
        first = await reader.items(3)
        await reader.assert_quiet(1.0)
        held = sum(b.events for b in reader.unacked)
        delivered_before_acks = env.sandbox.pubsub.delivered
        subjects = [i.record.fields["Subject"] for i in first if isinstance(i, DecodedChange)]
        while len(subjects) < 10:
            reader.ack_all()
            batch = await reader.next_batch()
            subjects += [
                i.record.fields["Subject"] for i in batch.items if isinstance(i, DecodedChange)
            ]
        await reader.close()

    assert held == 3
    assert reader.max_unacked_events == 3
    assert subjects == [f"case {i}" for i in range(10)]
    if transport == "pubsub":
        assert delivered_before_acks == 3, "the server sent no more than was requested"


async def test_an_expired_replay_id_yields_a_reread_then_new_events(
    start_sandbox: StartSandbox, transport: Transport
) -> None:
    async with (
        start_sandbox(session_timeout_s=100 * 3600) as env,
        open_subscriber(transport, env, SandboxTokens.of(env)) as subscriber,
    ):
        reader = Reader(subscriber, CASES, None)
        await subscribed(env, transport)
        await env.create("Case", {"Subject": "old news"})
        await reader.changes(1)
        stored = reader.position
        await reader.close()
        # Counted as opened, not open: the sandbox's Pub/Sub stream may outlive the cancelled
        # call until its next keepalive, and close while the new one opens (CI saw 1, not 2).
        before = _opened(env, transport)
        assert stored is not None

        env.clock.advance(72 * 3600 + 1)
        resumed = Reader(subscriber, CASES, stored)
        [signal] = await resumed.items(1)
        await _until(lambda: _opened(env, transport), before + 1, f"{transport} subscriptions")
        await env.create("Case", {"Subject": "fresh"})
        [fresh] = await resumed.changes(1)
        await resumed.close()

    assert isinstance(signal, Reread)
    assert (signal.entity, signal.record_ids, signal.since) == ("Case", None, stored.at)
    assert stored.at is not None
    assert "retention" in signal.reason
    assert fresh.record.fields["Subject"] == "fresh"


async def test_gap_and_overflow_events_yield_rereads_and_merged_events_expand(
    env: SalesforceEnv, transport: Transport
) -> None:
    async with open_subscriber(transport, env, SandboxTokens.of(env)) as subscriber:
        reader = Reader(subscriber, CASES, None)
        await subscribed(env, transport)
        ids = [await env.create("Case", {"Subject": f"case {i}"}) for i in range(3)]
        deleted = await env.http.delete(f"{API}/composite/sobjects", params={"ids": ",".join(ids)})
        assert all(r["success"] for r in deleted.json())
        gap = env.sandbox.publish_gap("Case", "GAP_UPDATE", [ids[0]])
        overflow = env.sandbox.publish_gap("Case", "GAP_OVERFLOW", [])
        items = await reader.items(3 + 3 + 2)
        await reader.close()

    deletes = [
        i for i in items if isinstance(i, DecodedChange) and i.header.change_type == "DELETE"
    ]
    assert [d.record.record_id for d in deletes] == ids, "one change per record id"
    assert all(d.header.record_ids == tuple(ids) for d in deletes)
    rereads = [i for i in items if isinstance(i, Reread)]
    commit = env.clock.now().replace(microsecond=0)
    assert gap.header["commitTimestamp"] == overflow.header["commitTimestamp"]
    assert rereads == [
        Reread("Case", (ids[0],), commit, "gap event (GAP_UPDATE)"),
        Reread("Case", None, commit - OVERFLOW_LOOKBACK, "overflow event (GAP_OVERFLOW)"),
    ]


async def test_a_refused_token_is_invalidated_and_replaced(
    env: SalesforceEnv, transport: Transport
) -> None:
    tokens = SandboxTokens.of(env)
    stale = await tokens.session()
    env.sandbox.org.oauth.expire_all()
    async with open_subscriber(transport, env, tokens) as subscriber:
        reader = Reader(subscriber, CASES, None)
        await subscribed(env, transport)
        fresh = await tokens.session()
        env.http.headers["Authorization"] = f"Bearer {fresh.access_token}"
        await env.create("Case", {"Subject": "after re-auth"})
        [change] = await reader.changes(1)
        await reader.close()

    assert tokens.invalidated == [stale]
    assert tokens.grants == 2
    assert change.record.fields["Subject"] == "after re-auth"
