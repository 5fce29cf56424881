"""Intercom ``notification_event`` deliveries as canonical events.

A conversation notification becomes one case event (the conversation's state) plus one message
event per conversation part it carries that has a body (Intercom sends only the parts the change
created); ``conversation.*.created`` adds the conversation's first message (its ``source``).
Contact notifications become one contact event (tagging and untagging a contact only say
``tags``); ``*.deleted`` a delete without data; ``ping`` nothing.

Intercom has no topic for removing a tag from a conversation ("Webhook models",
https://developers.intercom.com/docs/references/2.16/webhooks/webhook-models, lists only
``conversation_part.tag.created``): such a removal never reaches this normaliser, and only a
re-read of the conversation (reconciliation) can see it.

Values stay faithful to Intercom (``snoozed`` is ``pending``, ``not_priority`` is ``normal``):
mapping across platforms is the rules' job. The conversions themselves live in ``models`` (the
sink fingerprints its writes with them).

Event ids name the change where Intercom gives it an identity (a part, the first message),
not the notification, so a polled conversation (``connectors.intercom.polled``) yields the
same ids for the changes a webhook already brought: ``connectors.intercom.canonical``.

Actors: parts by the connector's ``service_account_id`` (Deskstream's bot admin) are the
integration, other admins agents, Intercom's ``bot`` (Fin, workflows) the AI, users and leads
customers. Contact notifications do not say who changed the contact, so their actor is the
system; the own-write fingerprints recognise Deskstream's contact writes instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from connectors.base.links import case_link_id, contact_link_id
from connectors.base.normalize import Normaliser, parse_json, validation_problems
from connectors.base.settings import ConnectorSettings
from connectors.base.source import SOURCE_HEADER
from connectors.intercom import models as ic
from connectors.intercom.canonical import CASE_TOPICS, Builder, case_key, changed_for, latest_part
from connectors.intercom.polled import (
    POLLED_CONTACT,
    POLLED_CONVERSATION,
    RECONCILED_CONTACT,
    RECONCILED_CONVERSATION,
    polled_contact,
    polled_conversation,
)
from schemas.errors import SkippableRecordError
from schemas.models import (
    Actor,
    ActorKind,
    Contact,
    EntityType,
    Envelope,
    Op,
    RawDelivery,
)

__all__ = ["IntercomNormaliser", "present_fields"]

M = TypeVar("M", bound=BaseModel)

_CONTACT_TOPICS: dict[str, Op] = {
    "contact.user.created": Op.CREATE,
    "contact.lead.created": Op.CREATE,
    "contact.user.updated": Op.UPDATE,
    "contact.lead.updated": Op.UPDATE,
    "contact.user.tag.created": Op.UPDATE,
    "contact.lead.tag.created": Op.UPDATE,
    "contact.user.tag.deleted": Op.UPDATE,
    "contact.lead.tag.deleted": Op.UPDATE,
}
_DELETE_TOPICS: dict[str, EntityType] = {
    "conversation.deleted": EntityType.CASE,
    "contact.deleted": EntityType.CONTACT,
    "contact.user.deleted": EntityType.CONTACT,
    "contact.lead.deleted": EntityType.CONTACT,
}


def present_fields(contact: Contact) -> list[str]:
    """The fields the contact has, custom attributes one by one (``custom_attributes.<key>``,
    the names the sync stage's profile fields use)."""
    fields = ("emails", "external_id", "name", "phone", "company", "plan")
    present = [name for name in fields if getattr(contact, name)]
    return present + [f"custom_attributes.{key}" for key in sorted(contact.custom_attributes)]


def _parse(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, limit=3)
        raise SkippableRecordError(
            f"{what} is not what Intercom 2.14 sends ({problems}); check the webhook's API "
            "version in the Developer Hub, then replay the delivery from quarantine"
        ) from None


# -- the normaliser ----------------------------------------------------------------------------


class IntercomNormaliser(Normaliser):
    platform: ClassVar[str] = "intercom"

    def __init__(
        self, *, connector_id: str, settings: ConnectorSettings, plan_attribute: str = "plan"
    ) -> None:
        super().__init__(connector_id=connector_id, settings=settings)
        #: the contact custom attribute that holds the customer's plan
        self.plan_attribute = plan_attribute
        self._bot = settings.service_account_id
        self._build = Builder(connector_id, settings.service_account_id)

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        document = parse_json(delivery.body)  # SkippableRecordError naming the problem
        pulled = delivery.headers.get(SOURCE_HEADER)
        if pulled in (POLLED_CONVERSATION, RECONCILED_CONVERSATION):
            conversation = _parse(ic.Conversation, document, "a polled conversation")
            return polled_conversation(self._build, delivery, conversation)
        if pulled in (POLLED_CONTACT, RECONCILED_CONTACT):
            contact = _parse(ic.Contact, document, "a polled contact")
            data = ic.contact_from(contact, plan_attribute=self.plan_attribute)
            present = present_fields(data)
            reconciled = pulled == RECONCILED_CONTACT
            return [
                polled_contact(self._build, delivery, contact, data, present, reconciled=reconciled)
            ]
        notification = _parse(ic.Notification, document, "the notification envelope")
        if notification.type != "notification_event":
            raise SkippableRecordError(
                f"type is {notification.type!r}, not 'notification_event'; check what posts to "
                "this webhook URL"
            )
        topic, item = notification.topic, notification.data.item
        if topic == "ping":
            return []
        if topic in _DELETE_TOPICS:
            return [self._deleted(delivery, notification, _DELETE_TOPICS[topic])]
        if topic in CASE_TOPICS:
            conversation = _parse(ic.Conversation, item, f"the {topic} item")
            return self._conversation(delivery, notification, conversation)
        if topic in _CONTACT_TOPICS:
            if item.get("type") == "contact_tag":
                contact = _parse(ic.ContactTag, item, f"the {topic} item").contact
            else:
                contact = _parse(ic.Contact, item, f"the {topic} item")
            return [self._contact(delivery, notification, contact)]
        raise SkippableRecordError(
            f"topic {topic!r} is not one Deskstream syncs; remove it from the Intercom webhook "
            "subscription (Developer Hub > Webhooks) or ask for support of it"
        )

    # -- builders ---------------------------------------------------------------------------

    def _conversation(
        self, delivery: RawDelivery, notification: ic.Notification, conversation: ic.Conversation
    ) -> list[Envelope]:
        topic = notification.topic
        op, _ = CASE_TOPICS[topic]
        changed = changed_for(topic, conversation.state)
        bot = self._bot
        parts = conversation.parts
        if op is Op.CREATE:
            actor = ic.actor_for(conversation.source.author if conversation.source else None, bot)
        elif topic == "conversation_part.tag.created":
            added = (
                {t.id for t in conversation.tags_added.tags} if conversation.tags_added else set()
            )
            applied = [t.applied_by for t in conversation.tag_list if t.id in added]
            actor = ic.actor_for(applied[-1] if applied else None, bot)
            # The tag this notification is about: the rest of the list is a copy, possibly
            # older than another tag notification of the same second.
            named = conversation.tags_added.tags if conversation.tags_added else []
            changed += sorted(f"tags.{t.name}" for t in named if t.name)
        else:
            actor = ic.actor_for(parts[-1].author if parts else None, bot)
        occurred_at = _time(notification.created_at)
        case = self._build.envelope(
            source_event_id=case_key(topic, conversation, notification.id),
            event_type=topic,
            occurred_at=occurred_at,
            ingested_at=delivery.received_at,
            entity_type=EntityType.CASE,
            entity_id=conversation.id,
            op=op,
            actor=actor,
            data=ic.case_from(conversation, bot_admin_id=bot),
            changed=changed,
            version=latest_part(conversation),
            link_id=self._build.link(conversation.id),
        )
        messages = self._build.messages(
            conversation,
            event_type=topic,
            occurred_at=occurred_at,
            ingested_at=delivery.received_at,
        )
        return [case, *messages]

    def _contact(
        self, delivery: RawDelivery, notification: ic.Notification, contact: ic.Contact
    ) -> Envelope:
        data = ic.contact_from(contact, plan_attribute=self.plan_attribute)
        email = data.emails[0] if data.emails else None
        tagged = ".tag." in notification.topic
        return self._build.envelope(
            source_event_id=f"{notification.id}:contact:{contact.id}",
            event_type=notification.topic,
            occurred_at=_time(notification.created_at),
            ingested_at=delivery.received_at,
            entity_type=EntityType.CONTACT,
            entity_id=contact.id,
            op=_CONTACT_TOPICS[notification.topic],
            actor=Actor(kind=ActorKind.SYSTEM),
            data=data,
            # Intercom does not say which attributes changed; the ones present are the
            # candidates, and the sync's state convergence drops those that did not. A tag
            # names only "tags": an empty list would tell the sync that anything may have
            # changed, and canonical contacts carry no tags to compare.
            changed=["tags"] if tagged else present_fields(data),
            version=contact.updated_at,
            link_id=contact_link_id(
                email, platform=self.platform, connector_id=self.connector_id, entity_id=contact.id
            ),
        )

    def _deleted(
        self, delivery: RawDelivery, notification: ic.Notification, entity_type: EntityType
    ) -> Envelope:
        reference = _parse(ic.Reference, notification.data.item, f"the {notification.topic} item")
        rid = reference.id
        if entity_type is EntityType.CASE:
            link = case_link_id(self.platform, self.connector_id, rid)
        else:
            link = contact_link_id(
                None, platform=self.platform, connector_id=self.connector_id, entity_id=rid
            )
        return self._build.envelope(
            source_event_id=f"{notification.id}:{entity_type.value}:{rid}",
            event_type=notification.topic,
            occurred_at=_time(notification.created_at),
            ingested_at=delivery.received_at,
            entity_type=entity_type,
            entity_id=rid,
            op=Op.DELETE,
            actor=Actor(kind=ActorKind.SYSTEM),
            data=None,
            changed=[],
            version=None,
            link_id=link,
        )


def _time(value: int) -> datetime:
    stamp = ic.unix_time(value)
    assert stamp is not None
    return stamp
