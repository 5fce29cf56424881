"""Ticket events and users read by polling (``connectors.zendesk.ticket_events``,
``connectors.zendesk.users_export``) as canonical events: what the event-subscription
webhooks of the same changes say.

**A ticket event** is one update of a ticket (an audit) with its child events, paired by the
poll with the ticket as it stands now (``tickets/show_many``): the body of its delivery is
``{"ticket_event": ..., "ticket": ...}``. It becomes:

- one message event per comment (``"event_type": "Comment"``), whose source event id is
  ``comment:<comment id>``, the id the ``ticket.comment_added`` webhook's event gets too
  (``connectors.zendesk.normalize``): a comment pushed and polled is one event;
- one case event for the update's synced field changes (``Create`` children: a case create,
  its fields populated, as ``ticket.created``; ``Change`` children: ``status``, ``priority``,
  ``subject``, ``tags`` with ``tags.<name>`` per tag added or removed, ``assignee``,
  ``requester``, ``custom_fields.<id>``), at the update's time, by its updater, its data the
  ticket with the update's values. Zendesk's webhook events carry a random id and no audit id,
  so no poll can give this event the webhook's id: the two reports carry the same value, time
  and actor, and the sync stage's registers take the second for what it is, a report of a
  change they already hold (dedupe by version, not by id).

**A user** (end users only: agents are not customers) is the user as exported. Zendesk's user
events name their field, so a copy naming none would be taken for an older view; the poll
therefore names the fields whose value differs from its previous read of the same user (a
bounded memory in its position, the Salesforce reconciliation's method), and a user it never
read is a plain copy (a create, while never updated).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from pydantic import ValidationError

from connectors.base.links import case_link_id, contact_link_id, is_link_id
from connectors.base.normalize import event_id, parse_json, validation_problems
from connectors.base.source import RECONCILE_EVENT_TYPE
from connectors.zendesk.models import (
    PROFILE_USER_FIELDS,
    TicketDetail,
    parse_time,
    populated_fields,
)
from schemas.errors import SkippableRecordError
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    Contact,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    RawDelivery,
    Source,
)

__all__ = [
    "POLLED_TICKET_EVENT",
    "POLLED_USER",
    "TICKET_EVENT_TYPE",
    "USER_EVENT_TYPE",
    "comment_key",
    "polled_ticket_event",
    "polled_user",
    "user_digests",
]

#: ``SOURCE_HEADER`` values of polled records
POLLED_TICKET_EVENT = "zendesk.ticket_events"
POLLED_USER = "zendesk.users"
#: canonical ``source.event_type`` of their events
TICKET_EVENT_TYPE = "zendesk:incremental_ticket_event"
USER_EVENT_TYPE = "zendesk:incremental_user_export"

#: a Change child's field → the canonical field it changes
_FIELDS = {
    "status": "status",
    "priority": "priority",
    "subject": "subject",
    "tags": "tags",
    "assignee_id": "assignee",
    "requester_id": "requester",
}
#: the user fields a poll remembers and compares (canonical name → the export's field)
_USER_FIELDS = {"name": "name", "phone": "phone", "external_id": "external_id", "emails": "email"}


class TicketReader(Protocol):
    """What the Zendesk normaliser lends this module."""

    def case_of(self, detail: TicketDetail, extra: dict[str, Any]) -> Case: ...

    def kind_of(self, user_id: str, *, staff: bool) -> ActorKind: ...


def comment_key(comment_id: str) -> str:
    """The source event id of a comment's message event, webhook or poll."""
    return f"comment:{comment_id}"


def _body(delivery: RawDelivery) -> dict[str, Any]:
    document = parse_json(delivery.body)
    if not isinstance(document, dict):
        raise SkippableRecordError("a polled Zendesk record that is not a JSON object")
    return document


def _event(
    connector: str,
    key: str,
    *,
    event_type: str,
    entity: EntityType,
    entity_id: str,
    op: Op,
    actor: Actor,
    data: Case | Message | Contact | None,
    changed: list[str],
    version: str | None,
    link: str,
    when: str | None,
    delivery: RawDelivery,
) -> Envelope:
    occurred = parse_time(when) if when else delivery.received_at
    return Envelope(
        event_id=event_id(connector, key),
        source=Source(
            platform=Platform.ZENDESK,
            connector_id=connector,
            entity_type=entity,
            entity_id=entity_id,
            event_type=event_type,
            source_event_id=key,
            source_version=version,
            actor=actor,
            occurred_at=occurred,
        ),
        op=op,
        changed_fields=changed,
        data=data,
        link_id=link,
        ingested_at=delivery.received_at,
    )


def _changes(children: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str], bool]:
    """The update's values by ticket field, the canonical fields it changed, and whether it
    created the ticket."""
    values: dict[str, Any] = {}
    changed: list[str] = []
    created = False
    for child in children:
        kind = child.get("event_type")
        if kind not in ("Create", "Change"):
            continue
        created |= kind == "Create"
        for name, value in child.items():
            if name in _FIELDS:
                values[name] = value
                changed.append(_FIELDS[name])
                if name == "tags":
                    deltas = [*(child.get("added_tags") or []), *(child.get("removed_tags") or [])]
                    changed += sorted({f"tags.{t}" for t in deltas if isinstance(t, str)})
            elif name.isdigit():  # a custom field, named by its id
                values[name] = value
                changed.append(f"custom_fields.{name}")
    return values, list(dict.fromkeys(changed)), created


def polled_ticket_event(reader: TicketReader, delivery: RawDelivery) -> list[Envelope]:
    body = _body(delivery)
    ticket_event, ticket = body.get("ticket_event"), body.get("ticket")
    if not isinstance(ticket_event, dict) or not isinstance(ticket, dict):
        raise SkippableRecordError(
            "a polled ticket event without its ticket_event and ticket; the ticket event "
            "export answered something else: check the API base URL"
        )
    try:
        detail = TicketDetail.model_validate(ticket)
    except ValidationError as exc:
        raise SkippableRecordError(
            f"a polled ticket that is not a Zendesk ticket ({validation_problems(exc)})"
        ) from None
    connector = delivery.connector_id
    link = detail.external_id or ""
    if not is_link_id(link):
        link = case_link_id("zendesk", connector, detail.id)
    when = ticket_event.get("created_at")
    when = when if isinstance(when, str) else None
    updater = ticket_event.get("updater_id")
    updater_id = str(updater) if updater is not None else None
    actor = (
        Actor(
            kind=reader.kind_of(updater_id, staff=updater_id != detail.requester_id), id=updater_id
        )
        if updater_id
        else Actor(kind=ActorKind.SYSTEM)
    )
    children = [c for c in ticket_event.get("child_events") or [] if isinstance(c, dict)]
    events: list[Envelope] = []
    for child in children:
        if child.get("event_type") == "Comment" and child.get("id") is not None:
            events.append(_comment(reader, delivery, detail, child, link, when))
    values, changed, created = _changes(children)
    if not changed and not created:
        return events
    overridden = ticket | {k: v for k, v in values.items() if not k.isdigit()}
    customs = {k: v for k, v in values.items() if k.isdigit()}
    if customs:
        fields = [f for f in ticket.get("custom_fields") or [] if isinstance(f, dict)]
        kept = [f for f in fields if str(f.get("id")) not in customs]
        overridden["custom_fields"] = kept + [{"id": k, "value": v} for k, v in customs.items()]
    try:
        case = reader.case_of(TicketDetail.model_validate(overridden), {})
    except ValidationError:
        case = reader.case_of(detail, {})
    op = Op.CREATE if created else Op.UPDATE
    if created:
        changed = populated_fields(case)
    events.append(
        _event(
            connector,
            f"ticket_event:{ticket_event.get('id')}",
            event_type=TICKET_EVENT_TYPE,
            entity=EntityType.CASE,
            entity_id=detail.id,
            op=op,
            actor=actor,
            data=case,
            changed=changed,
            version=when,
            link=link,
            when=when,
            delivery=delivery,
        )
    )
    return events


def _person(reader: TicketReader, user: Any, detail: TicketDetail) -> Actor:
    """The user who made a ticket's update or comment: staff unless the ticket's requester
    (ticket events do not say), the integration when it is our own."""
    if user is None:
        return Actor(kind=ActorKind.SYSTEM)
    user_id = str(user)
    return Actor(kind=reader.kind_of(user_id, staff=user_id != detail.requester_id), id=user_id)


def _comment(
    reader: TicketReader,
    delivery: RawDelivery,
    detail: TicketDetail,
    child: dict[str, Any],
    link: str,
    when: str | None,
) -> Envelope:
    author = _person(reader, child.get("author_id"), detail)
    created = child.get("created_at") if isinstance(child.get("created_at"), str) else when
    body = child.get("body")
    message = Message(
        case_id=detail.id,
        author=author,
        body_text=str(body) if body is not None else None,
        public=child.get("public", True) is not False,
        created_at=parse_time(created) if created else delivery.received_at,
    )
    comment_id = str(child["id"])
    return _event(
        delivery.connector_id,
        comment_key(comment_id),
        event_type=TICKET_EVENT_TYPE,
        entity=EntityType.MESSAGE,
        entity_id=comment_id,
        op=Op.CREATE,
        actor=author,
        data=message,
        changed=[],
        version=detail.updated_at,
        link=link,
        when=created,
        delivery=delivery,
    )


# -- users -------------------------------------------------------------------------------------


def _user_values(user: dict[str, Any]) -> dict[str, Any]:
    values = {name: user.get(field) or None for name, field in _USER_FIELDS.items()}
    fields = user.get("user_fields") if isinstance(user.get("user_fields"), dict) else {}
    for key, value in (fields or {}).items():
        name = key if key in PROFILE_USER_FIELDS else f"custom_attributes.{key}"
        values[name] = value
    return values


def user_digests(user: dict[str, Any]) -> dict[str, str]:
    """Six hex characters per compared field of ``user``: what a poll remembers of it."""
    return {
        name: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:6]
        for name, value in _user_values(user).items()
    }


def polled_user(delivery: RawDelivery, *, reconciled: bool = False) -> list[Envelope]:
    """A user the export showed; a reconciliation's (``reconciled``) names no field and is no
    creation: the sync stage compares every profile field with what the link last heard."""
    body = _body(delivery)
    user = body.get("user")
    if not isinstance(user, dict) or user.get("id") is None:
        raise SkippableRecordError("a polled Zendesk user without a user; check the API base URL")
    if (user.get("role") or "end-user") in ("agent", "admin"):
        return []  # agents and admins are not customers
    changed_names = [str(n) for n in body.get("changed") or []]
    values = _user_values(user)
    email = values.get("emails")
    attributes = {
        k.removeprefix("custom_attributes."): v
        for k, v in values.items()
        if k.startswith("custom_attributes.")
    }
    contact = Contact(
        emails=[email] if email else [],
        external_id=values.get("external_id"),
        name=values.get("name"),
        phone=values.get("phone"),
        company=values.get("company"),
        plan=values.get("plan"),
        custom_attributes={
            k: v if v is None or isinstance(v, str | bool | int | float) else str(v)
            for k, v in attributes.items()
        },
    )
    user_id = str(user["id"])
    created = user.get("created_at") is not None and user.get("created_at") == user.get(
        "updated_at"
    )
    changed = changed_names
    if reconciled:
        created, changed = False, []
    elif created:
        changed = (["emails"] if email else []) + [
            k for k in ("external_id", "name", "phone") if values.get(k)
        ]
    return [
        _event(
            delivery.connector_id,
            delivery.delivery_id,
            event_type=RECONCILE_EVENT_TYPE if reconciled else USER_EVENT_TYPE,
            entity=EntityType.CONTACT,
            entity_id=user_id,
            op=Op.CREATE if created else Op.UPDATE,
            actor=Actor(kind=ActorKind.SYSTEM),
            data=contact,
            changed=changed,
            version=user.get("updated_at") if isinstance(user.get("updated_at"), str) else None,
            link=contact_link_id(
                email, platform="zendesk", connector_id=delivery.connector_id, entity_id=user_id
            ),
            when=user.get("updated_at") if isinstance(user.get("updated_at"), str) else None,
            delivery=delivery,
        )
    ]
