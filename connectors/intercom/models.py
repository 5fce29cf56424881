"""Intercom 2.14 objects as the connector reads them, their canonical form, and the body-text
helpers shared by the normaliser and the sink.

The models are lenient on purpose: unknown fields are ignored, nearly everything is optional and
numeric ids are read as strings (Intercom sends ``admin_assignee_id`` as a number and author ids
as strings), so a field Intercom adds or drops in a later version never breaks ingest. Only what
the connector cannot work without is required (an id, a topic).

The converters to canonical records (``case_from``, ``message_from``, ``contact_from``,
``actor_for``) serve both the normaliser and the sink, which fingerprints what it wrote with
them: one conversion, so both sides agree on every canonical value. They stay faithful to
Intercom (``snoozed`` is ``pending``, ``not_priority`` is ``normal``); mapping across platforms is
the rules' job. Actors: Deskstream's bot admin (the connector's ``service_account_id``) is the
integration, other admins and teams agents, Intercom's ``bot`` (Fin, workflows) the AI, users and
leads customers.

``html_to_text`` is the one canonical text of a body: the normaliser puts it in
``Message.body_text`` and the sink fingerprints the body it posted with it, so both sides agree
on "the same message" whatever markup Intercom adds around it (``<p>`` wrapping, attributes).
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas import models as cm

__all__ = [
    "Admin",
    "AdminMessage",
    "Author",
    "Contact",
    "ContactTag",
    "Conversation",
    "ConversationPart",
    "ConversationSource",
    "DataAttribute",
    "Notification",
    "PartAttachment",
    "Reference",
    "Tag",
    "actor_for",
    "case_from",
    "case_status",
    "contact_from",
    "custom_values",
    "html_to_text",
    "message_from",
    "text_to_html",
    "unix_time",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Author(_Lenient):
    """A part's or source's author; ``type`` is admin, user, lead, contact, bot or team."""

    type: str | None = None
    id: str | None = None
    name: str | None = None
    email: str | None = None


class PartAttachment(_Lenient):
    type: str | None = None
    name: str | None = None
    url: str | None = None
    content_type: str | None = None
    filesize: int | None = None


class ConversationPart(_Lenient):
    id: str
    part_type: str | None = None
    body: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    author: Author | None = None
    attachments: list[PartAttachment] = Field(default_factory=list)
    #: "the current state of conversation when the conversation part was created"
    #: (``conversation_part.state``, 2.14): what a poll reads status changes from
    state: str | None = None


class ConversationSource(_Lenient):
    """The message that started a conversation (customer, admin or automated)."""

    type: str | None = None
    id: str | None = None
    delivered_as: str | None = None
    subject: str | None = None
    body: str | None = None
    author: Author | None = None
    attachments: list[PartAttachment] = Field(default_factory=list)


class Tag(_Lenient):
    id: str
    name: str | None = None
    #: on a conversation's tags: who applied it
    applied_by: Author | None = None


class _TagList(_Lenient):
    tags: list[Tag] = Field(default_factory=list)


class _ContactRef(_Lenient):
    id: str
    external_id: str | None = None


class _ContactRefList(_Lenient):
    contacts: list[_ContactRef] = Field(default_factory=list)


class _PartList(_Lenient):
    conversation_parts: list[ConversationPart] = Field(default_factory=list)
    total_count: int | None = None


class Conversation(_Lenient):
    id: str
    title: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    state: str | None = None
    open: bool | None = None
    priority: str | None = None
    admin_assignee_id: str | None = None
    team_assignee_id: str | None = None
    source: ConversationSource | None = None
    contacts: _ContactRefList | None = None
    tags: _TagList | None = None
    custom_attributes: dict[str, Any] | None = None
    conversation_parts: _PartList | None = None
    #: only on ``conversation_part.tag.created`` notifications: the tags just applied
    tags_added: _TagList | None = None

    @property
    def parts(self) -> list[ConversationPart]:
        return self.conversation_parts.conversation_parts if self.conversation_parts else []

    @property
    def tag_list(self) -> list[Tag]:
        return self.tags.tags if self.tags else []

    @property
    def tag_names(self) -> list[str]:
        return [t.name for t in self.tag_list if t.name]

    @property
    def contact_ids(self) -> list[str]:
        return [c.id for c in self.contacts.contacts] if self.contacts else []


class _CompanyRef(_Lenient):
    id: str | None = None
    name: str | None = None


class _CompanyList(_Lenient):
    data: list[_CompanyRef] = Field(default_factory=list)


class Contact(_Lenient):
    id: str
    role: str | None = None
    email: str | None = None
    external_id: str | None = None
    name: str | None = None
    phone: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    custom_attributes: dict[str, Any] | None = None
    companies: _CompanyList | None = None


class ContactTag(_Lenient):
    """The item of ``contact.*.tag.created`` notifications."""

    contact: Contact
    tag: Tag


class Admin(_Lenient):
    id: str
    name: str | None = None
    email: str | None = None


class DataAttribute(_Lenient):
    name: str
    model: str | None = None
    data_type: str | None = None
    custom: bool | None = None
    api_writable: bool | None = None


class AdminMessage(_Lenient):
    """The answer to ``POST /messages``; ``conversation_id`` is there when a conversation
    was opened for it (``create_conversation_without_contact_reply``)."""

    type: str | None = None
    id: str
    created_at: int | None = None
    body: str | None = None
    message_type: str | None = None
    conversation_id: str | None = None


class Reference(_Lenient):
    """The item of ``*.deleted`` notifications: identification only."""

    id: str


class _NotificationData(_Lenient):
    item: dict[str, Any]


class Notification(_Lenient):
    """The ``notification_event`` envelope of every Intercom webhook."""

    type: str
    id: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    app_id: str | None = None
    created_at: int
    delivery_attempts: int | None = None
    data: _NotificationData


_BREAKS = re.compile(r"(?i)<\s*br\s*/?\s*>|</\s*(?:p|div|li|h[1-6]|blockquote|pre|tr)\s*>")
_TAGS = re.compile(r"<[^>]*>")


def html_to_text(body: str | None) -> str:
    """Plain text of an HTML body: block ends become line breaks, blanks are collapsed,
    empty lines dropped. Idempotent on plain text without markup."""
    if not body:
        return ""
    text = html.unescape(_TAGS.sub("", _BREAKS.sub("\n", body)))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def text_to_html(text: str) -> str:
    """One paragraph per non-empty line, escaped; ``html_to_text`` gives ``text`` back."""
    return "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line.strip())


def unix_time(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


# -- canonical form ----------------------------------------------------------------------------

_INT64 = 2**63
_STATUSES = {
    "open": cm.CaseStatus.OPEN,
    "closed": cm.CaseStatus.CLOSED,
    "snoozed": cm.CaseStatus.PENDING,
}
_PRIORITIES = {"priority": cm.Priority.HIGH, "not_priority": cm.Priority.NORMAL}
_CHANNELS = {"conversation": "chat", "push": "mobile", "phone_call": "voice"}
_CUSTOMERS = {"user", "lead", "contact"}
#: parts whose body the customer sees; any other part with a body (a note, an assignment
#: comment) is internal, the safe side when Intercom adds part types
_PUBLIC_PARTS = {"comment", "close", "open"}


def actor_for(author: Author | None, bot_admin_id: str | None) -> cm.Actor:
    if author is None or not author.type:
        return cm.Actor(kind=cm.ActorKind.SYSTEM)
    if author.type == "admin":
        ours = bot_admin_id is not None and author.id == bot_admin_id
        kind = cm.ActorKind.INTEGRATION if ours else cm.ActorKind.AGENT
    elif author.type in _CUSTOMERS:
        kind = cm.ActorKind.CUSTOMER
    elif author.type == "bot":
        kind = cm.ActorKind.AI
    elif author.type == "team":
        kind = cm.ActorKind.AGENT
    else:
        kind = cm.ActorKind.SYSTEM
    return cm.Actor(kind=kind, id=author.id, email=author.email or None, name=author.name or None)


def custom_values(attributes: dict[str, Any] | None) -> dict[str, cm.CustomValue]:
    """Intercom attribute values as Avro-safe scalars; objects and lists as JSON text."""
    values: dict[str, cm.CustomValue] = {}
    for name, value in (attributes or {}).items():
        if value is None or isinstance(value, bool | float | str):
            values[name] = value
        elif isinstance(value, int):
            values[name] = value if -_INT64 <= value < _INT64 else str(value)
        else:
            values[name] = json.dumps(value, sort_keys=True, default=str)
    return values


def case_status(state: str | None, is_open: bool | None = None) -> cm.CaseStatus:
    if state in _STATUSES:
        return _STATUSES[state]
    return cm.CaseStatus.CLOSED if is_open is False else cm.CaseStatus.OPEN


def case_from(conversation: Conversation, *, bot_admin_id: str | None) -> cm.Case:
    source = conversation.source
    subject = conversation.title or (html_to_text(source.subject) if source else "")
    requester: cm.Actor | None = None
    if conversation.contact_ids:
        contact_id = conversation.contact_ids[0]
        author = source.author if source else None
        if author is not None and author.id == contact_id and author.type in _CUSTOMERS:
            requester = actor_for(author, bot_admin_id)
        else:
            requester = cm.Actor(kind=cm.ActorKind.CUSTOMER, id=contact_id)
    assignee = None
    if conversation.admin_assignee_id not in (None, "", "0"):
        admin = Author(type="admin", id=conversation.admin_assignee_id)
        assignee = actor_for(admin, bot_admin_id)
    channel = None
    if source is not None and (source.type or source.delivered_as):
        channel = _CHANNELS.get(source.type or "", source.type or source.delivered_as)
    return cm.Case(
        subject=subject or None,
        status=case_status(conversation.state, conversation.open),
        priority=_PRIORITIES.get(conversation.priority or ""),
        tags=conversation.tag_names,
        requester=requester,
        assignee=assignee,
        custom_fields=custom_values(conversation.custom_attributes),
        channel=channel,
        created_at=unix_time(conversation.created_at),
        updated_at=unix_time(conversation.updated_at),
    )


def message_from(
    part: ConversationPart | ConversationSource,
    *,
    conversation_id: str,
    created_at: datetime,
    bot_admin_id: str | None,
) -> cm.Message | None:
    """A part (or the conversation's source) as a message; None when it carries nothing to
    read (assignment, close or open without a comment)."""
    if not html_to_text(part.body) and not part.attachments:
        return None
    if isinstance(part, ConversationSource):
        public = True  # the first message is always in front of the customer
    else:
        public = (part.part_type or "") in _PUBLIC_PARTS
    return cm.Message(
        case_id=conversation_id,
        author=actor_for(part.author, bot_admin_id),
        body_text=html_to_text(part.body) or None,
        body_html=part.body or None,
        public=public,
        created_at=created_at,
        attachments=[
            cm.Attachment(
                name=a.name or "attachment",
                content_type=a.content_type or "application/octet-stream",
                size_bytes=a.filesize,
                source_url=a.url,
            )
            for a in part.attachments
            if a.url
        ],
    )


def contact_from(contact: Contact, *, plan_attribute: str = "plan") -> cm.Contact:
    attributes = contact.custom_attributes or {}
    plan = attributes.get(plan_attribute)
    companies = contact.companies.data if contact.companies else []
    return cm.Contact(
        emails=[contact.email] if contact.email else [],
        external_id=contact.external_id or None,
        name=contact.name or None,
        phone=contact.phone or None,
        company=next((c.name for c in companies if c.name), None),
        plan=str(plan) if plan not in (None, "") else None,
        custom_attributes=custom_values(attributes),
    )
