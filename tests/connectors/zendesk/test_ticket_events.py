"""The ticket event and user exports as Sources, against the Zendesk sandbox: a comment read
by a poll has its webhook's event id, field changes come with the values of their update,
the time-based export's repeated second is read once, and a user poll names what changed."""

from __future__ import annotations

from datetime import datetime

import pytest

from connectors.base.settings import SourceSettings
from connectors.base.source import Source
from connectors.zendesk.normalize import ZendeskNormaliser
from connectors.zendesk.polled import TICKET_EVENT_TYPE
from connectors.zendesk.ticket_events import ZendeskTicketEvents, ZendeskUsers
from schemas.models import (
    ActorKind,
    Case,
    CaseStatus,
    EntityType,
    Envelope,
    Message,
    Op,
    RawDelivery,
)
from tests.connectors.sources import delivered, polled, read
from tests.sandboxes.zendesk.conftest import ZendeskEnv

LOOKBACK = SourceSettings(poll_seconds=0.01, start_lookback_seconds=300)


def normalise(env: ZendeskEnv, deliveries: list[RawDelivery]) -> list[Envelope]:
    normaliser = ZendeskNormaliser(connector_id="zd", settings=env.connector_settings())
    return [e for d in deliveries for e in normaliser.normalise(d)]


def pushed(env: ZendeskEnv) -> list[RawDelivery]:
    assert env.receiver is not None
    return delivered(env.receiver, "zd", "zendesk", lambda body: str(body["id"]))


def source_of(kind: type[ZendeskTicketEvents | ZendeskUsers], env: ZendeskEnv) -> Source:
    return kind(
        connector_id="zd",
        settings=env.connector_settings(),
        source=LOOKBACK,
        clock=lambda: env.clock.now().timestamp(),
    )


@pytest.fixture
def events_source(zendesk_hooks: ZendeskEnv) -> Source:
    return source_of(ZendeskTicketEvents, zendesk_hooks)


async def test_polled_ticket_events_match_what_the_webhooks_said(
    zendesk_hooks: ZendeskEnv, events_source: Source
) -> None:
    env = zendesk_hooks
    env.clock.advance(120)
    ticket = await env.create_ticket(subject="Printer on fire")
    tid = ticket["id"]
    env.clock.advance(2)
    await env.http.put(
        f"/api/v2/tickets/{tid}",
        json={"ticket": {"comment": {"body": "We sent a technician"}, "status": "pending"}},
    )
    env.clock.advance(2)
    await env.http.put(
        f"/api/v2/tickets/{tid}", json={"ticket": {"status": "solved", "tags": ["fire"]}}
    )
    await env.drain()
    webhooks = normalise(env, pushed(env))
    env.clock.advance(61)  # past the export's held-back minute
    try:
        batches = await read(events_source, None)
    finally:
        await events_source.aclose()
    polls = normalise(env, polled(batches))

    # Comments: the same event id either way.
    def comments(events: list[Envelope]) -> set[str]:
        return {e.event_id for e in events if e.source.entity_type is EntityType.MESSAGE}

    assert comments(webhooks) == comments(polls)
    assert len(comments(polls)) == 2
    # Field changes: one event per update, with that update's values and actor.
    cases = [e for e in polls if e.source.entity_type is EntityType.CASE]
    assert [e.op for e in cases] == [Op.CREATE, Op.UPDATE, Op.UPDATE]
    assert all(e.source.event_type == TICKET_EVENT_TYPE for e in cases)
    pending, solved = cases[1], cases[2]
    assert pending.changed_fields == ["status"]
    assert pending.data.status is CaseStatus.PENDING  # type: ignore[union-attr]
    assert solved.changed_fields == ["status", "tags", "tags.fire"]
    assert solved.data.status is CaseStatus.SOLVED  # type: ignore[union-attr]
    assert {e.source.actor.kind for e in cases} == {ActorKind.INTEGRATION}  # our own token
    assert [e.source.occurred_at for e in cases] == sorted(e.source.occurred_at for e in cases)
    # The webhooks' field changes carry the same value at the same time.
    status_hooks = [e for e in webhooks if "status" in e.changed_fields and e.op is Op.UPDATE]

    def status_at(event: Envelope) -> tuple[CaseStatus | None, datetime]:
        data = event.data
        status = data.status if isinstance(data, Case) else None
        return status, event.source.occurred_at.replace(microsecond=0)

    assert [status_at(e) for e in status_hooks] == [status_at(e) for e in (pending, solved)]
    message = next(e.data for e in polls if isinstance(e.data, Message) and e.data.body_text)
    assert message.body_text is not None
    assert batches[-1].records[-1].key == f"zd:case:{tid}"


async def test_the_repeated_second_of_a_time_based_page_is_read_once(
    zendesk: ZendeskEnv,
) -> None:
    source = source_of(ZendeskTicketEvents, zendesk)
    try:
        zendesk.clock.advance(120)
        await zendesk.create_ticket()
        zendesk.clock.advance(61)
        first = await read(source, None)
        assert len(polled(first)) == 1
        stored = first[-1].position
        assert stored["start_time"] == int(zendesk.clock.now().timestamp()) - 61
        zendesk.clock.advance(5)
        again = await read(source, stored)
        assert polled(again) == []  # the export repeats that second; its events are known
        await zendesk.create_ticket()
        zendesk.clock.advance(61)
        assert len(polled(await read(source, again[-1].position))) == 1
    finally:
        await source.aclose()


async def test_a_user_poll_names_the_fields_changed_since_its_previous_read(
    zendesk: ZendeskEnv,
) -> None:
    source = source_of(ZendeskUsers, zendesk)
    try:
        zendesk.clock.advance(120)
        created = await zendesk.http.post(
            "/api/v2/users", json={"user": {"name": "Ana Silva", "email": "ana@example.com"}}
        )
        user_id = created.json()["user"]["id"]
        zendesk.clock.advance(61)
        first = await read(source, None)
        [event] = [
            e for e in normalise(zendesk, polled(first)) if e.source.entity_id == str(user_id)
        ]
        assert event.op is Op.CREATE  # never updated: what user.created says
        zendesk.clock.advance(5)
        await zendesk.http.put(f"/api/v2/users/{user_id}", json={"user": {"name": "Ana Costa"}})
        zendesk.clock.advance(61)
        later = await read(source, first[-1].position)
        [changed] = [
            e for e in normalise(zendesk, polled(later)) if e.source.entity_id == str(user_id)
        ]
        assert (changed.op, changed.changed_fields) == (Op.UPDATE, ["name"])
        assert changed.data.name == "Ana Costa"  # type: ignore[union-attr]
    finally:
        await source.aclose()
