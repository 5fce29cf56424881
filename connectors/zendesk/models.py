"""Zendesk's shapes: REST responses, event-subscription webhooks, and the vocabulary between
Zendesk's values and canonical ones.

Every model is lenient (``extra="ignore"``): Zendesk adds fields to its responses and events
without notice, and a connector that refused them would stop syncing on an ordinary release.
Ids are ``str`` everywhere: the REST API sends numbers, the event payloads strings, and a
canonical id is a string.

The vocabulary between canonical records and Zendesk's values lives here too, because the
normaliser (reading) and the sink (writing) must agree on it: own-write fingerprints only
match when both spell a value the same canonical way.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from connectors.base.commands import attribution, decode_list, encode_list
from connectors.base.links import normalise_email
from schemas.errors import FatalAPIError
from schemas.models import Case, CaseStatus, Contact, CustomValue, Message, Priority

__all__ = [
    "CANONICAL_PRIORITY",
    "CANONICAL_STATUS",
    "PROFILE_USER_FIELDS",
    "ZENDESK_STATUS",
    "Attachment",
    "Audit",
    "Comment",
    "CustomFieldValue",
    "EventEnvelope",
    "Id",
    "Identity",
    "Ticket",
    "TicketDetail",
    "TicketField",
    "TicketWrite",
    "Upload",
    "User",
    "UserDetail",
    "Via",
    "canonical_custom_value",
    "canonical_ticket_value",
    "canonical_user_value",
    "comment_body",
    "contact_emails",
    "custom_fields_payload",
    "parse_time",
    "populated_fields",
    "user_payload",
    "zendesk_custom_value",
    "zendesk_time",
]


def _as_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: A Zendesk id: a number in REST answers, a string in events; always ``str`` here.
Id = Annotated[str, BeforeValidator(_as_str)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- REST responses -------------------------------------------------------------------------


class Via(_Lenient):
    channel: str | None = None


class CustomFieldValue(_Lenient):
    id: Id
    value: Any = None


class Ticket(_Lenient):
    id: Id
    external_id: str | None = None
    subject: str | None = None
    status: str
    priority: str | None = None
    requester_id: Id | None = None
    assignee_id: Id | None = None
    group_id: Id | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: list[CustomFieldValue] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    via: Via | None = None


class Audit(_Lenient):
    id: Id
    events: list[dict[str, Any]] = Field(default_factory=list)

    def comment_id(self) -> str | None:
        """The id of the comment this write added, from the audit's ``Comment`` event."""
        for event in self.events:
            if event.get("type") in ("Comment", "VoiceComment") and event.get("id") is not None:
                return str(event["id"])
        return None


class TicketWrite(_Lenient):
    """The answer to a ticket create or update: the ticket and the audit of the write."""

    ticket: Ticket
    audit: Audit | None = None


class Attachment(_Lenient):
    id: Id
    file_name: str
    content_url: str
    content_type: str | None = None
    size: int | None = None


class Comment(_Lenient):
    id: Id
    author_id: Id | None = None
    body: str = ""
    public: bool = True
    created_at: datetime | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class User(_Lenient):
    id: Id
    name: str | None = None
    email: str | None = None
    external_id: str | None = None
    phone: str | None = None
    role: str | None = None
    active: bool = True
    user_fields: dict[str, Any] = Field(default_factory=dict)


class Identity(_Lenient):
    id: Id
    user_id: Id | None = None
    type: str
    value: str
    primary: bool = False


class Upload(_Lenient):
    token: str
    attachment: Attachment | None = None


class TicketField(_Lenient):
    id: Id
    type: str
    title: str
    active: bool = True
    custom_field_options: list[dict[str, Any]] = Field(default_factory=list)
    system_field_options: list[dict[str, Any]] = Field(default_factory=list)


# -- event-subscription webhooks ------------------------------------------------------------


class EventEnvelope(_Lenient):
    """``{"type": "zen:event-type:ticket.status_changed", "id", "time", "subject",
    "detail": {...the record after the change}, "event": {...what changed}}``."""

    type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    time: str
    subject: str
    account_id: Id | None = None
    detail: dict[str, Any]
    event: dict[str, Any] = Field(default_factory=dict)


class TicketDetail(_Lenient):
    id: Id
    actor_id: Id | None = None
    status: str | None = None
    priority: str | None = None
    subject: str | None = None
    requester_id: Id | None = None
    assignee_id: Id | None = None
    external_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    #: Not in the documented detail; read when a Zendesk release sends it.
    custom_fields: list[CustomFieldValue] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    via: Via | None = None


class UserDetail(_Lenient):
    id: Id
    email: str | None = None
    external_id: str | None = None
    role: str | None = None
    #: Not in the documented detail; read when present.
    name: str | None = None
    phone: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


# -- vocabulary -----------------------------------------------------------------------------

#: Zendesk status (any case) → canonical; ``hold`` is the one spelled differently.
CANONICAL_STATUS: dict[str, CaseStatus] = {
    "new": CaseStatus.NEW,
    "open": CaseStatus.OPEN,
    "pending": CaseStatus.PENDING,
    "hold": CaseStatus.ON_HOLD,
    "solved": CaseStatus.SOLVED,
    "closed": CaseStatus.CLOSED,
}
ZENDESK_STATUS: dict[CaseStatus, str] = {v: k for k, v in CANONICAL_STATUS.items()}
CANONICAL_PRIORITY: dict[str, Priority] = {p.value: p for p in Priority}
#: Contact attributes a Zendesk user has no native attribute for: they live in user fields
#: of the same key (an admin creates them), read and written as the canonical attribute.
#: Organisations are not managed, so ``company`` is not an organization membership.
PROFILE_USER_FIELDS = ("company", "plan")

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def parse_time(value: str) -> datetime:
    """Zendesk's times, including events' nanoseconds (truncated to microseconds, which is
    what a Python datetime and an Avro ``timestamp-micros`` hold)."""
    match = _TIME.match(value.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 time: {value[:40]!r}")
    whole, fraction, zone = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{whole}.{micros}{zone}").astimezone(UTC)


def canonical_custom_value(value: Any) -> CustomValue:
    """A custom field value as the canonical record holds it. Multiselect values (lists) have
    no canonical type of their own: they travel as a sorted JSON list string."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set):
        return encode_list(str(v) for v in value)
    return json.dumps(value, sort_keys=True)


def zendesk_custom_value(value: CustomValue) -> Any:
    """The inverse of :func:`canonical_custom_value` for writing."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            if isinstance(json.loads(value), list):
                return decode_list(value)
        except ValueError:
            return value
    return value


def canonical_ticket_value(ticket: Ticket, field: str) -> Any:
    """A ticket's ``field`` (a canonical field name) spelled as the normaliser spells it."""
    if field == "status":
        status = CANONICAL_STATUS.get(ticket.status.lower())
        return status.value if status else ticket.status
    if field == "priority":
        priority = CANONICAL_PRIORITY.get((ticket.priority or "").lower())
        return priority.value if priority else None
    if field == "subject":
        return ticket.subject
    if field == "tags":
        return list(ticket.tags)
    field_id = field.removeprefix("custom_fields.")
    found = [f.value for f in ticket.custom_fields if f.id == field_id]
    return canonical_custom_value(found[0] if found else None)


def canonical_user_value(user: User, field: str) -> Any:
    """A user's ``field`` (``name``, ``phone``, ``external_id``, ``company``, ``plan``,
    ``custom_attributes.<key>``) spelled canonically."""
    if field in PROFILE_USER_FIELDS:
        return canonical_custom_value(user.user_fields.get(field))
    if field.startswith("custom_attributes."):
        return canonical_custom_value(
            user.user_fields.get(field.removeprefix("custom_attributes."))
        )
    return getattr(user, field, None)


def custom_fields_payload(values: dict[str, CustomValue], keys: list[str]) -> list[dict[str, Any]]:
    """``[{"id", "value"}]`` for the canonical custom fields ``keys`` (Zendesk field ids)."""
    entries = []
    for key in keys:
        if not key.isdigit():
            raise FatalAPIError(
                f"custom field key {key!r} is not a Zendesk field id; map the field to its "
                "numeric id in the rules file, then `deskstream dlq retry` the command"
            )
        entries.append({"id": int(key), "value": zendesk_custom_value(values.get(key))})
    return entries


def zendesk_time(moment: datetime) -> str:
    """REST times: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def comment_body(message: Message, platform: str, *, attribute: bool) -> tuple[str, str]:
    """``("body", text)`` or, for an HTML-only message, ``("html_body", markup)``, with the
    ``attribution`` line first when Zendesk cannot record the author and time itself."""
    if message.body_text or not message.body_html:
        text = message.body_text or "(no text)"
        return "body", f"{attribution(message, platform)}\n\n{text}" if attribute else text
    prefix = f"<p>{html.escape(attribution(message, platform))}</p>" if attribute else ""
    return "html_body", prefix + message.body_html


def contact_emails(contact: Contact) -> list[str]:
    """The contact's emails, normalised, primary first, without repeats."""
    return list(dict.fromkeys(normalise_email(e) for e in contact.emails if e.strip()))


def user_payload(contact: Contact, fields: Collection[str] | None) -> dict[str, Any]:
    """The user attributes to write: everything for a create (``fields`` None), else only
    the named canonical fields."""

    def wanted(name: str) -> bool:
        return fields is None or name in fields

    emails = contact_emails(contact)
    payload: dict[str, Any] = {}
    if fields is None:
        payload["name"] = contact.name or (emails[0].split("@")[0] if emails else "Customer")
        if emails:
            payload["email"] = emails[0]
        if len(emails) > 1:
            payload["identities"] = [{"type": "email", "value": e} for e in emails[1:]]
    elif "name" in fields and contact.name:
        payload["name"] = contact.name
    if wanted("external_id") and contact.external_id:
        payload["external_id"] = contact.external_id
    if wanted("phone") and contact.phone:
        payload["phone"] = contact.phone
    user_fields = {
        key: zendesk_custom_value(value)
        for key, value in contact.custom_attributes.items()
        if fields is None or "custom_attributes" in fields or f"custom_attributes.{key}" in fields
    }
    for name in PROFILE_USER_FIELDS:
        value = getattr(contact, name)
        if wanted(name) and value is not None:
            user_fields[name] = value
    if user_fields:
        payload["user_fields"] = user_fields
    return payload


def populated_fields(case: Case) -> list[str]:
    """The fields a created ticket brings: all of them that hold a value."""
    present = {
        "subject": bool(case.subject),
        "status": True,
        "priority": case.priority is not None,
        "tags": bool(case.tags),
        "requester": case.requester is not None,
        "assignee": case.assignee is not None,
        "channel": bool(case.channel),
    }
    return [name for name, here in present.items() if here] + [
        f"custom_fields.{k}" for k, v in sorted(case.custom_fields.items()) if v is not None
    ]
