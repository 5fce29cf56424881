"""Zendesk event-subscription webhooks → canonical events.

One delivery carries one event (``zen:event-type:<domain>.<kind>``) with ``detail``, the
record after the change, and ``event``, what changed. The whole record goes into ``data``;
``changed_fields`` says which part the event is about, so the sync stage writes only that.

| event type (``zen:event-type:``)  | canonical                                                |
|-----------------------------------|----------------------------------------------------------|
| ``ticket.created``                | case create; changed_fields = every populated field      |
| ``ticket.status_changed``         | case update ``status`` (NEW/OPEN/PENDING/HOLD/SOLVED/    |
|                                   | CLOSED → new/open/pending/on_hold/solved/closed)         |
| ``ticket.priority_changed``       | case update ``priority``                                 |
| ``ticket.subject_changed``        | case update ``subject``                                  |
| ``ticket.tags_changed``           | case update ``tags`` and ``tags.<name>`` per tag added   |
|                                   | or removed (data holds the full tag list)                |
| ``ticket.custom_field_changed``   | case update ``custom_fields.<field id>``                 |
| ``ticket.agent_assignment_changed``| case update ``assignee``                                |
| ``ticket.requester_changed``      | case update ``requester``                                |
| ``ticket.comment_added``          | message create (entity = comment id, case = ticket id)   |
| ``ticket.comment_made_private``   | message update ``public``                                |
| ``ticket.soft_deleted``,          | case delete (no data)                                    |
| ``ticket.permanently_deleted``    |                                                          |
| ``user.created``                  | contact create (end users only)                          |
| ``user.name_changed``             | contact update ``name``                                  |
| ``user.external_id_changed``      | contact update ``external_id``                           |
| ``user.identity_created``         | contact update ``emails`` (email) or ``phone`` (phone)   |
| ``user.custom_field_changed``     | contact update ``custom_attributes.<key>``; the user     |
|                                   | fields ``company`` and ``plan`` → ``company`` / ``plan``  |
| ``user.deleted``                  | contact delete (no data)                                 |
| ``_IGNORED`` kinds below, events  | ``[]``: no canonical field to carry (group, type, brand, |
| about staff users, other domains  | organization, ...), or not a customer (agents, admins),  |
| (``organization.*``, ...)         | or outside what Deskstream syncs                         |
| anything else                     | ``SkippableRecordError``: quarantined with the reason    |

Tickets pulled from the incremental export (``connectors.zendesk.incremental``, marked by the
``deskstream-source`` header) are observations: the ticket as it stood, with no
``changed_fields`` (every field a copy; the sync stage compares it with what it knows), op
``create`` while the ticket was never updated after its creation (its fields populated, as
``ticket.created``), ``delete`` for status ``deleted``. The actor is not in the export:
``system``. The event type is ``zendesk:incremental_ticket_export``.

Zendesk has no ping event; its "Test webhook" button posts an admin-written body without an
event ``type``, which is quarantined like any payload that is not an event.

Who made the change (``source.actor``): ``detail.actor_id`` (for comments, the author when the
detail has no actor). It is ``integration`` when it is the connector's ``service_account_id``
(the user whose API token Deskstream writes with: the first layer of echo detection),
``system`` for Zendesk's own user (-1), ``customer`` for the ticket's requester or a
non-staff comment author, else ``agent``. ``via.channel`` is not used: it says how the ticket
was *created*, not who changed it. User events carry no actor: they are ``system``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from connectors.base.links import case_link_id, contact_link_id, is_link_id
from connectors.base.normalize import (
    Normaliser,
    check_json_bounds,
    event_id,
    validation_problems,
)
from connectors.base.settings import ConnectorSettings
from connectors.base.source import RECONCILE_EVENT_TYPE, SOURCE_HEADER
from connectors.zendesk.incremental import EXPORTED_TICKET
from connectors.zendesk.models import (
    CANONICAL_PRIORITY,
    CANONICAL_STATUS,
    PROFILE_USER_FIELDS,
    EventEnvelope,
    TicketDetail,
    UserDetail,
    canonical_custom_value,
    parse_time,
    populated_fields,
)
from connectors.zendesk.polled import (
    POLLED_TICKET_EVENT,
    POLLED_USER,
    comment_key,
    polled_ticket_event,
    polled_user,
)
from connectors.zendesk.reconcile import RECONCILED_TICKET, RECONCILED_USER
from schemas.errors import SkippableRecordError
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    Contact,
    EntityData,
    EntityType,
    Envelope,
    Message,
    Op,
    Platform,
    RawDelivery,
    Source,
)

__all__ = ["EVENT_PREFIX", "EXPORTED_EVENT_TYPE", "ZendeskNormaliser"]

logger = logging.getLogger(__name__)

EVENT_PREFIX = "zen:event-type:"
#: canonical ``source.event_type`` of a ticket pulled from the incremental export
EXPORTED_EVENT_TYPE = "zendesk:incremental_ticket_export"
ZENDESK_SYSTEM_USER = "-1"

_TICKET_FIELD_EVENTS: dict[str, str] = {
    "status_changed": "status",
    "priority_changed": "priority",
    "subject_changed": "subject",
    "tags_changed": "tags",
    "agent_assignment_changed": "assignee",
    "requester_changed": "requester",
}
_IGNORED: dict[str, frozenset[str]] = {
    # custom_status_changed: status_changed carries its category; external_id_changed: a
    # link is named by the record it started on; merged: status_changed closes the ticket.
    "ticket": frozenset(
        """group_assignment_changed organization_changed type_changed custom_status_changed
        external_id_changed attachment_linked_to_comment attachment_redacted_from_comment
        comment_redacted merged undeleted marked_as_spam brand_changed form_changed
        due_date_changed problem_link_changed email_ccs_changed followers_changed""".split()  # noqa: SIM905 - a word list
    ),
    "user": frozenset(
        """role_changed tags_changed notes_changed details_changed active_changed alias_changed
        default_group_changed last_login_changed photo_changed time_zone_changed locale_changed
        password_changed identity_changed identity_deleted merged suspended_changed
        organization_membership_created organization_membership_deleted""".split()  # noqa: SIM905
    ),
}
_STAFF_ROLES = frozenset({"agent", "admin"})


def _time(value: str | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise SkippableRecordError(
            f"{what} is not an ISO-8601 time ({value[:40]!r}); Zendesk sends "
            "2025-01-08T14:25:30.123456789Z. Check what posts to this webhook"
        ) from None


def _blank(value: str | None) -> str | None:
    return value if value else None


def _current(event: dict[str, Any]) -> Any:
    """``event.current``: a value, or ``{"value": ...}`` for ticket custom fields."""
    current = event.get("current")
    return current.get("value") if isinstance(current, dict) else current


def _tag_deltas(event: dict[str, Any]) -> list[str]:
    """``tags.<name>`` for each tag the event added or removed: a person's tag edit is
    about those tags only, whatever else the ticket's tag list holds."""
    names: set[str] = set()
    for key in ("tags_added", "tags_removed"):
        value = event.get(key)
        if isinstance(value, list):
            names.update(str(tag) for tag in value if isinstance(tag, str | int))
    return [f"tags.{name}" for name in sorted(names)]


@dataclass
class _Change:
    """What one event says, before it becomes an Envelope."""

    entity_type: EntityType
    entity_id: str
    actor: Actor
    op: Op = Op.UPDATE
    changed: list[str] = field(default_factory=list)
    data: EntityData = None
    #: the case link; contacts derive theirs from ``email``
    link_id: str | None = None
    email: str | None = None
    version: str | None = None


class ZendeskNormaliser(Normaliser):
    platform: ClassVar[str] = "zendesk"

    def __init__(self, *, connector_id: str, settings: ConnectorSettings) -> None:
        super().__init__(connector_id=connector_id, settings=settings)
        self._service = _blank(settings.service_account_id)
        if self._service is None:
            logger.warning(
                "zendesk connector has no service_account_id connector=%s: Deskstream's own "
                "writes are recognised by fingerprints only",
                connector_id,
            )

    # -- entry point -----------------------------------------------------------------------

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        check_json_bounds(delivery.body)  # SkippableRecordError before the parser recurses
        pulled = delivery.headers.get(SOURCE_HEADER)
        if pulled == EXPORTED_TICKET:
            return [self._exported(delivery, EXPORTED_EVENT_TYPE)]
        if pulled == RECONCILED_TICKET:
            # A reconciliation's re-read: compared field by field with what the link believes.
            return [self._exported(delivery, RECONCILE_EVENT_TYPE)]
        if pulled == POLLED_TICKET_EVENT:
            return polled_ticket_event(self, delivery)
        if pulled in (POLLED_USER, RECONCILED_USER):
            return polled_user(delivery, reconciled=pulled == RECONCILED_USER)
        try:
            raw = EventEnvelope.model_validate_json(delivery.body)
        except ValidationError as exc:
            problems = validation_problems(exc)
            raise SkippableRecordError(
                f"not a Zendesk event-subscription payload ({problems}); subscribe the "
                "webhook to zen:event-type:ticket.* / user.* events, not to a trigger with a "
                "custom body"
            ) from None
        if not raw.type.startswith(EVENT_PREFIX):
            raise SkippableRecordError(
                f"event type {raw.type[:80]!r} is not a Zendesk event type ({EVENT_PREFIX}...); "
                "check what posts to this webhook"
            )
        domain, _, kind = raw.type.removeprefix(EVENT_PREFIX).partition(".")
        if domain not in ("ticket", "user") or kind in _IGNORED[domain]:
            return []  # another domain (organization, article...) or nothing canonical in it
        connector = delivery.connector_id
        change = self._ticket(connector, raw, kind) if domain == "ticket" else self._user(raw, kind)
        if change is None:
            return []
        occurred_at = _time(raw.time, "the event time")
        assert occurred_at is not None  # the model requires the field
        # A comment is named by its own id, so a poll of the same comment has this event id
        # (connectors.zendesk.polled); other events only have the webhook's random id.
        key = raw.id
        if domain == "ticket" and kind == "comment_added":
            key = comment_key(change.entity_id)
        return [
            Envelope(
                event_id=event_id(connector, key),
                source=Source(
                    platform=Platform.ZENDESK,
                    connector_id=connector,
                    entity_type=change.entity_type,
                    entity_id=change.entity_id,
                    event_type=raw.type,
                    source_event_id=key,
                    source_version=change.version,
                    actor=change.actor,
                    occurred_at=occurred_at,
                ),
                op=change.op,
                changed_fields=change.changed,
                data=change.data,
                link_id=change.link_id
                or contact_link_id(
                    change.email,
                    platform="zendesk",
                    connector_id=connector,
                    entity_id=change.entity_id,
                ),
                ingested_at=delivery.received_at,
            )
        ]

    def _exported(self, delivery: RawDelivery, event_type: str) -> Envelope:
        """A ticket row of the incremental export: an observation of the whole ticket."""
        try:
            detail = TicketDetail.model_validate_json(delivery.body)
        except ValidationError as exc:
            raise SkippableRecordError(
                f"an exported ticket that is not a Zendesk ticket ({validation_problems(exc)}); "
                "the incremental export answered something else: check the API base URL"
            ) from None
        link = detail.external_id or ""
        if not is_link_id(link):
            link = case_link_id("zendesk", delivery.connector_id, detail.id)
        op, data, changed = Op.UPDATE, None, []
        if detail.status == "deleted":
            op = Op.DELETE
        else:
            data = self._case(detail, {})
            if detail.created_at is not None and detail.created_at == detail.updated_at:
                op, changed = Op.CREATE, populated_fields(data)
        occurred_at = _time(detail.updated_at, "the exported ticket's updated_at")
        return Envelope(
            event_id=event_id(delivery.connector_id, delivery.delivery_id),
            source=Source(
                platform=Platform.ZENDESK,
                connector_id=delivery.connector_id,
                entity_type=EntityType.CASE,
                entity_id=detail.id,
                event_type=event_type,
                source_event_id=delivery.delivery_id,
                source_version=detail.updated_at,
                actor=Actor(kind=ActorKind.SYSTEM),
                occurred_at=occurred_at or delivery.received_at,
            ),
            op=op,
            changed_fields=changed,
            data=data,
            link_id=link,
            ingested_at=delivery.received_at,
        )

    # -- what the polled records' reader borrows (connectors.zendesk.polled) ---------------

    def case_of(self, detail: TicketDetail, extra: dict[str, Any]) -> Case:
        return self._case(detail, extra)

    def kind_of(self, user_id: str, *, staff: bool) -> ActorKind:
        return self._kind_of(user_id, staff=staff)

    # -- actors ----------------------------------------------------------------------------

    def _kind_of(self, user_id: str, *, staff: bool) -> ActorKind:
        if self._service is not None and user_id == self._service:
            return ActorKind.INTEGRATION
        if user_id == ZENDESK_SYSTEM_USER:
            return ActorKind.SYSTEM
        return ActorKind.AGENT if staff else ActorKind.CUSTOMER

    def _author(self, author: dict[str, Any]) -> Actor:
        name = author.get("name")
        return Actor(
            kind=self._kind_of(str(author["id"]), staff=bool(author.get("is_staff"))),
            id=str(author["id"]),
            name=str(name) if name else None,
        )

    def _ticket_actor(self, detail: TicketDetail, author: dict[str, Any] | None) -> Actor:
        author_id = str(author["id"]) if author else None
        actor_id = detail.actor_id or author_id
        if actor_id is None:
            return Actor(kind=ActorKind.SYSTEM)
        if author is not None and actor_id == author_id:
            return self._author(author)
        # Only staff and the ticket's own end users change a ticket; in practice that end
        # user is the requester.
        staff = actor_id != detail.requester_id
        return Actor(kind=self._kind_of(actor_id, staff=staff), id=actor_id)

    # -- tickets ---------------------------------------------------------------------------

    def _case(self, detail: TicketDetail, extra_fields: dict[str, Any]) -> Case:
        status = CANONICAL_STATUS.get((detail.status or "").lower())
        if status is None:
            raise SkippableRecordError(
                f"ticket {detail.id} has status {detail.status!r}, not one of "
                "NEW/OPEN/PENDING/HOLD/SOLVED/CLOSED (a deleted ticket's events other than "
                "soft_deleted carry nothing to sync)"
            )
        priority = CANONICAL_PRIORITY.get((detail.priority or "").lower())
        if detail.priority and priority is None:
            raise SkippableRecordError(
                f"ticket {detail.id} has priority {detail.priority!r}, not LOW/NORMAL/HIGH/URGENT"
            )
        fields = {f.id: canonical_custom_value(f.value) for f in detail.custom_fields}
        requester, assignee = detail.requester_id, detail.assignee_id
        return Case(
            subject=detail.subject,
            status=status,
            priority=priority,
            tags=list(detail.tags),
            requester=Actor(kind=ActorKind.CUSTOMER, id=requester) if requester else None,
            assignee=Actor(kind=self._kind_of(assignee, staff=True), id=assignee)
            if assignee
            else None,
            custom_fields=fields | extra_fields,
            channel=detail.via.channel if detail.via else None,
            created_at=_time(detail.created_at, "detail.created_at"),
            updated_at=_time(detail.updated_at, "detail.updated_at"),
        )

    def _ticket(self, connector: str, raw: EventEnvelope, kind: str) -> _Change:
        try:
            detail = TicketDetail.model_validate(raw.detail)
        except ValidationError as exc:
            raise SkippableRecordError(
                f"{raw.type} with an unreadable ticket detail ({validation_problems(exc)})"
            ) from None
        link = detail.external_id or ""
        if not is_link_id(link):
            link = case_link_id("zendesk", connector, detail.id)
        if kind in ("comment_added", "comment_made_private"):
            return self._message(raw, kind, detail, link)
        change = _Change(EntityType.CASE, detail.id, self._ticket_actor(detail, None))
        change.link_id, change.version = link, detail.updated_at
        if kind in ("soft_deleted", "permanently_deleted"):
            change.op = Op.DELETE
            return change
        extra: dict[str, Any] = {}
        if kind == "created":
            change.op, change.data = Op.CREATE, self._case(detail, extra)
            change.changed = populated_fields(change.data)
            return change
        if kind == "custom_field_changed":
            field_id = (raw.event.get("custom_field") or {}).get("id")
            if field_id is None:
                raise SkippableRecordError(
                    f"{raw.type} without event.custom_field.id; cannot tell which field changed"
                )
            extra[str(field_id)] = canonical_custom_value(_current(raw.event))
            change.changed = [f"custom_fields.{field_id}"]
        elif kind in _TICKET_FIELD_EVENTS:
            change.changed = [_TICKET_FIELD_EVENTS[kind]]
            if kind == "tags_changed":  # which tags, one by one: ``tags.<name>``
                change.changed += _tag_deltas(raw.event)
        else:
            raise SkippableRecordError(
                f"unknown Zendesk ticket event {raw.type!r}; if Zendesk added it, map it in "
                "connectors/zendesk/normalize.py and replay the quarantined deliveries"
            )
        change.data = self._case(detail, extra)
        return change

    def _message(self, raw: EventEnvelope, kind: str, detail: TicketDetail, link: str) -> _Change:
        comment = raw.event.get("comment")
        if not isinstance(comment, dict) or comment.get("id") is None:
            raise SkippableRecordError(f"{raw.type} without event.comment.id; nothing to link")
        author = comment.get("author")
        if not isinstance(author, dict) or author.get("id") is None:
            author = None
        actor = self._ticket_actor(detail, author)
        created_at = _time(raw.time, "the event time")
        assert created_at is not None
        body = comment.get("body")
        adding = kind == "comment_added"
        change = _Change(EntityType.MESSAGE, str(comment["id"]), actor)
        change.link_id, change.version = link, detail.updated_at
        change.op, change.changed = (Op.CREATE, []) if adding else (Op.UPDATE, ["public"])
        change.data = Message(
            case_id=detail.id,
            author=self._author(author) if author else actor,
            body_text=str(body) if body is not None else None,
            public=adding and comment.get("is_public", True) is not False,
            created_at=created_at,
        )
        return change

    # -- users -----------------------------------------------------------------------------

    def _user(self, raw: EventEnvelope, kind: str) -> _Change | None:
        try:
            detail = UserDetail.model_validate(raw.detail)
        except ValidationError as exc:
            raise SkippableRecordError(
                f"{raw.type} with an unreadable user detail ({validation_problems(exc)})"
            ) from None
        if (detail.role or "end-user") in _STAFF_ROLES:
            return None  # agents and admins are not customers
        # User events do not say who made the change.
        change = _Change(EntityType.CONTACT, detail.id, Actor(kind=ActorKind.SYSTEM))
        change.email, change.version = _blank(detail.email), detail.updated_at
        emails = [change.email] if change.email else []
        values: dict[str, Any] = {
            "external_id": _blank(detail.external_id),
            "name": _blank(detail.name),
            "phone": _blank(detail.phone),
        }
        attributes: dict[str, Any] = {}
        current = _current(raw.event)
        if kind in ("created", "deleted"):
            change.op = Op.CREATE if kind == "created" else Op.DELETE
        elif kind in ("name_changed", "external_id_changed"):
            name = kind.removesuffix("_changed")
            values[name], change.changed = _blank(str(current or "")), [name]
        elif kind == "identity_created":
            identity = raw.event.get("identity") or {}
            value = str(identity.get("value") or "")
            if identity.get("type") == "email" and value:
                emails += [value] if value != change.email else []
                change.changed = ["emails"]
            elif identity.get("type") == "phone_number" and value:
                values["phone"], change.changed = value, ["phone"]
            else:
                return None  # social identities have no canonical field
        elif kind == "custom_field_changed":
            spec = raw.event.get("custom_field") or {}
            key = spec.get("key") or spec.get("id")
            if key is None:
                raise SkippableRecordError(f"{raw.type} without event.custom_field.key")
            if key in PROFILE_USER_FIELDS:  # the canonical company / plan
                values[key], change.changed = _blank(str(current or "")), [key]
            else:
                attributes[str(key)] = canonical_custom_value(current)
                change.changed = [f"custom_attributes.{key}"]
        else:
            raise SkippableRecordError(
                f"unknown Zendesk user event {raw.type!r}; if Zendesk added it, map it in "
                "connectors/zendesk/normalize.py and replay the quarantined deliveries"
            )
        if change.op is Op.CREATE:
            change.changed = (["emails"] if emails else []) + [k for k, v in values.items() if v]
        if change.op is not Op.DELETE:
            change.data = Contact(emails=emails, custom_attributes=attributes, **values)
        return change
