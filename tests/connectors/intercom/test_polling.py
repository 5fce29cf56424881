"""The Intercom search polls as Sources, against the Intercom sandbox: what a poll reads and
where it resumes, and that a change read by a poll has the event id its webhook has, so the
sync stage keeps one of the two."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from connectors.base.settings import ConnectorSettings, SourceSettings
from connectors.base.source import (
    RECONCILE_EVENT_TYPE,
    SOURCE_HEADER,
)
from connectors.intercom.normalize import IntercomNormaliser
from connectors.intercom.polling import (
    IntercomContactPoll,
    IntercomConversationPoll,
    IntercomReconcile,
)
from sandboxes.intercom.actors import IntercomAdmin, IntercomCustomer
from schemas.models import CaseStatus, EntityType, Envelope, Message, Op, RawDelivery
from tests.connectors.sources import delivered, polled, read
from tests.sandboxes.intercom.conftest import TOKEN, IntercomEnv

Feed = TypeVar("Feed", IntercomContactPoll, IntercomReconcile)

ADMIN = "991267002"  # Ada Agent, a person
BOT = "991267001"


def _settings(env: IntercomEnv) -> ConnectorSettings:
    return ConnectorSettings(
        platform="intercom", api_base_url=env.url, api_token=TOKEN, service_account_id=BOT
    )


@pytest.fixture
async def conversations(intercom: IntercomEnv) -> AsyncIterator[IntercomConversationPoll]:
    poll = IntercomConversationPoll(
        connector_id="ic",
        settings=_settings(intercom),
        source=SourceSettings(
            poll_seconds=0.01, start_lookback_seconds=600, batch_size=2, overlap_seconds=60
        ),
        clock=lambda: intercom.clock.now().timestamp(),
    )
    yield poll
    await poll.aclose()


def _feed(kind: type[Feed], env: IntercomEnv, **settings: Any) -> Feed:
    return kind(
        connector_id="ic",
        settings=_settings(env),
        source=SourceSettings(poll_seconds=0.01, **settings),
        clock=lambda: env.clock.now().timestamp(),
    )


def normalise(env: IntercomEnv, deliveries: list[RawDelivery]) -> list[Envelope]:
    normaliser = IntercomNormaliser(connector_id="ic", settings=_settings(env))
    return [event for d in deliveries for event in normaliser.normalise(d)]


def webhook_deliveries(env: IntercomEnv) -> list[RawDelivery]:
    return delivered(env.receiver, "ic", "intercom", lambda body: f"intercom:{body['id']}")


async def test_a_poll_reads_each_changed_conversation_whole_with_positions_per_page(
    intercom: IntercomEnv, conversations: IntercomConversationPoll
) -> None:
    customer = IntercomCustomer(intercom.http, email="maria@example.com", name="Maria")
    ids = [await customer.start_conversation(f"help {n}") for n in range(3)]
    intercom.clock.advance(10)
    batches = await read(conversations, None)
    assert [len(b.records) for b in batches] == [2, 1]  # batch_size per page
    assert [b.caught_up for b in batches] == [False, True]
    assert batches[0].position["after"] is not None  # mid-poll: where among the pages
    assert batches[-1].position["after"] is None
    records = [r for b in batches for r in b.records]
    assert sorted(r.key for r in records) == sorted(f"ic:case:{cid}" for cid in ids)
    record = records[0]
    body = json.loads(record.delivery.body)
    assert body["conversation_parts"]["type"] == "conversation_part.list"  # read whole
    assert record.delivery.headers == {SOURCE_HEADER: "intercom.conversations"}
    assert record.delivery.delivery_id == f"conversations:{body['id']}@{body['updated_at']}"


async def test_the_next_poll_reads_only_what_changed_and_the_overlap_costs_no_read(
    intercom: IntercomEnv, conversations: IntercomConversationPoll
) -> None:
    customer = IntercomCustomer(intercom.http, email="ana@example.com", name="Ana")
    first, second = [await customer.start_conversation(f"q {n}") for n in range(2)]
    intercom.clock.advance(5)
    done = (await read(conversations, None))[-1].position
    intercom.clock.advance(5)
    await IntercomAdmin(intercom.http, admin_id=ADMIN).close(second)
    intercom.clock.advance(5)
    again = await read(conversations, done)
    # Both are inside the overlap, but only the closed one has a new version.
    assert [r.key for b in again for r in b.records] == [f"ic:case:{second}"]
    assert first in again[-1].position["seen"]
    intercom.clock.advance(3600)
    later = await read(conversations, again[-1].position)
    assert polled(later) == []
    assert later[-1].position["seen"] == {}  # out of the overlap: forgotten


async def test_a_change_in_the_second_a_poll_read_is_read_by_the_next_poll(
    intercom: IntercomEnv, conversations: IntercomConversationPoll
) -> None:
    """``updated_at`` counts whole seconds: a reply made in the second a poll read the
    conversation leaves its version as it was. A poll that took that version as read for good
    never read the reply (the clean-clone CI failure of the webhooks-off e2e test: under load,
    polls landed between a customer's two replies and a note made within one second)."""
    customer = IntercomCustomer(intercom.http, email="sam@example.com", name="Sam")
    cid = await customer.start_conversation("first")
    intercom.clock.advance(0.2)  # the same second
    first = await read(conversations, None)
    await customer.reply(cid, "second, in the same second")
    await IntercomAdmin(intercom.http, admin_id=ADMIN).tag(cid, "vip")  # no part: state only
    intercom.clock.advance(5)
    again = await read(conversations, first[-1].position)
    events = normalise(intercom, polled(again))
    texts = [e.data.body_text for e in events if isinstance(e.data, Message)]
    assert "second, in the same second" in texts
    # The re-read's observation is not a copy of the first (normalize would drop it by id),
    # so the tag, which makes no part, reaches the sync stage too.
    [before] = [e for e in normalise(intercom, polled(first)) if _observes(e)]
    [after] = [e for e in events if _observes(e)]
    assert after.event_id != before.event_id
    assert "vip" in (after.data.tags if after.data else [])  # type: ignore[union-attr]
    # Read once its second was over, the version is settled: the overlap costs no read again.
    intercom.clock.advance(1)
    assert polled(await read(conversations, again[-1].position)) == []


def _observes(event: Envelope) -> bool:
    return event.source.event_type == RECONCILE_EVENT_TYPE


async def test_polled_changes_have_their_webhooks_event_ids(
    intercom: IntercomEnv, conversations: IntercomConversationPoll
) -> None:
    customer = IntercomCustomer(intercom.http, email="liam@example.com", name="Liam")
    admin = IntercomAdmin(intercom.http, admin_id=ADMIN)
    cid = await customer.start_conversation("My invoice is wrong")
    intercom.clock.advance(1)
    await admin.reply(cid, "Looking into it")
    intercom.clock.advance(1)
    await admin.note(cid, "refund pending")
    intercom.clock.advance(1)
    await admin.close(cid)
    intercom.clock.advance(1)
    await customer.reply(cid, "Still wrong")  # reopens
    intercom.clock.advance(1)
    await admin.assign(cid, ADMIN)
    await admin.tag(cid, "vip")
    await intercom.drain()
    everything = normalise(intercom, webhook_deliveries(intercom))
    pushed = [e for e in everything if e.source.entity_type is not EntityType.CONTACT]
    intercom.clock.advance(5)
    pulled = normalise(intercom, polled(await read(conversations, None)))

    pushed_ids = {e.event_id for e in pushed}
    pulled_ids = {e.event_id for e in pulled}
    # Every message, the creation and every change a part made: the same id either way.
    by_part = [
        e for e in pushed if (e.source.source_event_id or "").startswith(("part:", "source:"))
    ]
    # The first message, which every notification repeats, is one event.
    firsts = {
        e.event_id
        for e in by_part
        if e.source.source_event_id == f"source:{by_part[1].source.entity_id}"
    }
    assert len(firsts) == 1
    assert {e.event_id for e in by_part} <= pulled_ids
    # Only the tag (no part) and the poll's observation of the whole record differ.
    only_pushed = [e for e in pushed if e.event_id not in pulled_ids]
    assert {e.source.event_type for e in only_pushed} == {"conversation_part.tag.created"}
    only_pulled = [e for e in pulled if e.event_id not in pushed_ids]
    assert [e.source.event_type for e in only_pulled] == [RECONCILE_EVENT_TYPE]
    [observation] = only_pulled
    assert observation.changed_fields == []  # a copy of the record, tags included
    assert "vip" in (observation.data.tags if observation.data else [])  # type: ignore[union-attr]

    # The same change says the same thing both ways.
    pushed_by_id = {e.event_id: e for e in pushed}
    for event in pulled:
        twin = pushed_by_id.get(event.event_id)
        if twin is None or twin.source.entity_type is not EntityType.CASE:
            continue
        assert (event.op, event.changed_fields) == (twin.op, twin.changed_fields)
        assert event.source.actor == twin.source.actor
        assert event.source.source_version == twin.source.source_version
        assert event.data.status == twin.data.status  # type: ignore[union-attr]
    statuses = [
        (e.source.event_type, e.data.status)  # type: ignore[union-attr]
        for e in pulled
        if e.source.entity_type is EntityType.CASE and "status" in e.changed_fields
    ]
    assert statuses == [
        ("conversation.admin.closed", CaseStatus.CLOSED),
        ("conversation.user.replied", CaseStatus.OPEN),
    ]
    # Messages first: an escalation read by a poll knows its thread when it creates.
    kinds = [e.source.entity_type for e in pulled]
    assert kinds.index(EntityType.CASE) > max(
        i for i, k in enumerate(kinds) if k is EntityType.MESSAGE
    )
    assert next(e.op for e in pulled if e.source.entity_type is EntityType.CASE) is Op.CREATE
    assert sum(isinstance(e.data, Message) for e in pulled) == 4  # source, reply, note, reply


async def test_a_contact_poll_reads_contacts_whole_from_the_search(intercom: IntercomEnv) -> None:
    poll = _feed(IntercomContactPoll, intercom, start_lookback_seconds=600)
    try:
        intercom.clock.advance(60)
        contact_id = await IntercomCustomer(
            intercom.http, email="zoe@example.com", name="Zoe"
        ).identify()
        intercom.clock.advance(5)
        first = await read(poll, None)
        [record] = polled(first)
        assert record.headers == {SOURCE_HEADER: "intercom.contacts"}
        [event] = normalise(intercom, [record])
        assert (event.source.entity_id, event.op) == (contact_id, Op.UPDATE)
        assert "emails" in event.changed_fields  # candidates, as contact.user.updated says
        # The day's search finds it again; its version is remembered, so nothing is re-sent.
        intercom.clock.advance(120)
        assert polled(await read(poll, first[-1].position)) == []
    finally:
        await poll.aclose()


async def test_the_reconciliation_re_reads_conversations_then_contacts_as_reconciliations(
    intercom: IntercomEnv,
) -> None:
    reconcile = _feed(IntercomReconcile, intercom, window_seconds=600)
    try:
        intercom.clock.advance(60)
        customer = IntercomCustomer(intercom.http, email="noor@example.com", name="Noor")
        cid = await customer.start_conversation("hello")
        contact_id = await customer.identify()
        intercom.clock.advance(5)
        batches = await read(reconcile, None)
        assert [b.caught_up for b in batches] == [False, True]  # conversations, then contacts
        assert set(batches[-1].position) == {"conversations", "contacts"}
        records = polled(batches)
        assert [r.headers[SOURCE_HEADER] for r in records] == [
            "intercom.reconcile",
            "intercom.reconcile_contacts",
        ]
        events = normalise(intercom, records)
        [contact] = [e for e in events if e.source.entity_type is EntityType.CONTACT]
        assert (contact.source.entity_id, contact.source.event_type) == (
            contact_id,
            RECONCILE_EVENT_TYPE,
        )
        assert contact.changed_fields == []  # names no field: every one is compared
        assert any(e.source.entity_id == cid for e in events)
        # `deskstream reconcile --since`: one pass of both from a time
        again = await read(reconcile, {"since": int(intercom.clock.now().timestamp()) - 60})
        assert len(polled(again)) == 2
    finally:
        await reconcile.aclose()
