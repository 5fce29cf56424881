"""Conversations and contacts read by polling (``connectors.intercom.polling``) as canonical
events: what the webhooks of the same changes would have said, with the same event ids where
the change has an identity of its own (``connectors.intercom.canonical``).

A polled conversation is read whole (``GET /conversations/{id}``, parts included), so each
part is a change of its own: every part with a body is a message (``part:<id>``), and every
part a synced topic reports is the case event that topic's webhook would be
(``part:<id>:<topic>``: a close, an open, a snooze, an assignment, a reply that reopened the
conversation), its status read from the part's ``state`` ("the current state of conversation
when the conversation part was created"), its time and actor the part's. The first message
and the creation come from the conversation's ``source``. A webhook already processed for the
same change has the same id: the sync stage's dedupe drops the poll's copy, and the other way
round.

What has no part (a tag added or removed, the priority, a snooze running out) is in the
conversation's current state only: the last event of a polled conversation is a re-read of the
whole record at its ``updated_at`` (``changed_fields`` empty, actor the system, delivery id
``conversations:<id>@<updated_at>``, event type ``RECONCILE_EVENT_TYPE``): the sync stage
takes every synced field that differs from what the link last heard as a change made since,
even one Intercom reports with a topic of its own (a priority changed while webhooks were
lost), and audits it as ``reconciled`` (``streams.flows.case_fields``).

Messages come first, then the case events in part order, then the observation: a conversation
escalated while webhooks were lost creates its ticket with the thread already known.

A polled contact is what ``contact.user.updated`` says: the contact with the fields it holds
as the candidates (Intercom never names the changed attribute), at its ``updated_at``.
"""

from __future__ import annotations

from datetime import datetime

from connectors.base.links import contact_link_id
from connectors.base.source import RECONCILE_EVENT_TYPE
from connectors.intercom import models as ic
from connectors.intercom.canonical import (
    Builder,
    changed_for,
    created_topic,
    latest_part,
    part_topic,
)
from schemas.models import Actor, ActorKind, Contact, EntityType, Envelope, Op, RawDelivery

__all__ = [
    "POLLED_CONTACT",
    "POLLED_CONTACT_EVENT",
    "POLLED_CONVERSATION",
    "POLLED_CONVERSATION_EVENT",
    "RECONCILED_CONTACT",
    "RECONCILED_CONVERSATION",
    "polled_contact",
    "polled_conversation",
]

#: ``SOURCE_HEADER`` values of polled records (a reconciliation's conversations are read the
#: same way)
POLLED_CONVERSATION = "intercom.conversations"
RECONCILED_CONVERSATION = "intercom.reconcile"
POLLED_CONTACT = "intercom.contacts"
RECONCILED_CONTACT = "intercom.reconcile_contacts"
#: canonical ``source.event_type`` of the events no webhook topic names
POLLED_CONVERSATION_EVENT = "intercom:polled_conversation"
POLLED_CONTACT_EVENT = "intercom:polled_contact"


def _case_at(conversation: ic.Conversation, state: str | None) -> ic.Conversation:
    return conversation.model_copy(update={"state": state, "open": None})


def polled_conversation(
    build: Builder, delivery: RawDelivery, conversation: ic.Conversation
) -> list[Envelope]:
    bot, cid, received = build.bot_admin_id, conversation.id, delivery.received_at
    link = build.link(cid)
    updated = ic.unix_time(conversation.updated_at) or received
    events = build.messages(
        conversation, event_type=POLLED_CONVERSATION_EVENT, occurred_at=None, ingested_at=received
    )

    def case_event(
        key: str,
        topic: str,
        at: datetime,
        op: Op,
        actor: Actor,
        state: str | None,
        version: int | None,
    ) -> Envelope:
        return build.envelope(
            source_event_id=key,
            event_type=topic,
            occurred_at=at,
            ingested_at=received,
            entity_type=EntityType.CASE,
            entity_id=cid,
            op=op,
            actor=actor,
            data=ic.case_from(_case_at(conversation, state), bot_admin_id=bot),
            changed=[] if op is Op.CREATE else changed_for(topic, state),
            version=version,
            link_id=link,
        )

    state: str | None = "open"  # a conversation starts open
    source = conversation.source
    if source is not None and source.id:
        opened = created_topic(source)
        created = ic.unix_time(conversation.created_at) or updated
        actor = ic.actor_for(source.author, bot)
        key = f"source:{source.id}:{opened}"
        events.append(case_event(key, opened, created, Op.CREATE, actor, state, None))
    for part in conversation.parts:
        topic = part_topic(part, state)
        after = part.state or state
        if topic is not None:
            at = ic.unix_time(part.created_at) or updated
            actor = ic.actor_for(part.author, bot)
            version = int(part.id) if part.id.isdigit() else None
            events.append(
                case_event(f"part:{part.id}:{topic}", topic, at, Op.UPDATE, actor, after, version)
            )
        state = after
    events.append(
        build.envelope(
            source_event_id=delivery.delivery_id,
            event_type=RECONCILE_EVENT_TYPE,
            occurred_at=updated,
            ingested_at=received,
            entity_type=EntityType.CASE,
            entity_id=cid,
            op=Op.UPDATE,
            actor=Actor(kind=ActorKind.SYSTEM),
            data=ic.case_from(conversation, bot_admin_id=bot),
            changed=[],
            version=latest_part(conversation),
            link_id=link,
        )
    )
    return events


def polled_contact(
    build: Builder,
    delivery: RawDelivery,
    contact: ic.Contact,
    data: Contact,
    present: list[str],
    *,
    reconciled: bool = False,
) -> Envelope:
    """A reconciliation's read (``reconciled``) names no field: the sync stage compares every
    profile field with what the link last heard."""
    email = data.emails[0] if data.emails else None
    return build.envelope(
        source_event_id=delivery.delivery_id,
        event_type=RECONCILE_EVENT_TYPE if reconciled else POLLED_CONTACT_EVENT,
        occurred_at=ic.unix_time(contact.updated_at) or delivery.received_at,
        ingested_at=delivery.received_at,
        entity_type=EntityType.CONTACT,
        entity_id=contact.id,
        op=Op.UPDATE,
        actor=Actor(kind=ActorKind.SYSTEM),
        data=data,
        changed=[] if reconciled else present,
        version=contact.updated_at,
        link_id=contact_link_id(
            email, platform="intercom", connector_id=build.connector_id, entity_id=contact.id
        ),
    )
