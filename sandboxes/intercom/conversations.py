"""Conversations and their parts: create, reply, close/open/snooze/assign, tags, attributes.

State transitions follow Intercom's inbox model: a contact's reply reopens a closed or snoozed
conversation and starts ``waiting_since``; an admin comment clears it; snoozed conversations
count as open. Conversation webhooks carry the conversation with only the parts the change
created, as Intercom's notifications do.

Which change sends which topic follows "Webhook models"
(https://developers.intercom.com/docs/references/2.16/webhooks/webhook-models; the 2.x topic
table) and the REST pages named where each is built:

* ``conversation.admin.unsnoozed`` ("Admin conversation unsnoozes") when an admin opens a
  snoozed conversation, which is how the API unsnoozes ("Unsnoozing a conversation",
  https://developers.intercom.com/docs/references/1.2/rest-api/conversations/unsnoozing-a-conversation).
  UNVERIFIED: whether Intercom also sends ``conversation.admin.opened`` then (the sandbox
  sends only the unsnooze), and what, if anything, it sends when ``snoozed_until`` passes: the
  topic is described as an admin's action, so a snooze that runs out reopens the conversation
  silently unless ``snooze_expiry_topic`` is configured.
* ``conversation.priority.updated`` ("Conversation priority updated") when a teammate marks or
  unmarks the conversation as priority. API 2.14 cannot set ``priority``
  (``update_conversation_request`` has no such field), so the teammate acts through the
  sandbox's inbox route; the notification carries no part (UNVERIFIED), so it names no actor.
* Removing a tag (``DELETE /conversations/{id}/tags/{tag_id}``) sends NOTHING: the topic table
  has ``conversation_part.tag.created`` and no conversation tag-removal topic (contacts have
  ``contact.user.tag.deleted`` / ``contact.lead.tag.deleted``; conversations do not). A
  consumer learns of a removed conversation tag only by reading the conversation again
  (reconciliation).
"""

from __future__ import annotations

import html
from typing import Any

from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.models import (
    JSON,
    Admin,
    AppliedTag,
    Contact,
    Conversation,
    Part,
    Tag,
    attachment_from_url,
)
from sandboxes.intercom.state import Event, IntercomState, optional_int, optional_str

__all__ = ["ConversationService", "as_html", "render_conversation"]

_MAX_ATTACHMENTS = 10


def render_conversation(
    state: IntercomState, conversation: Conversation, parts: list[Part] | None
) -> JSON:
    return conversation.to_api(contacts=state.contacts, tags=state.tags, parts=parts)


def as_html(body: str) -> str:
    # Plain text is stored as a paragraph, the way Intercom renders API replies
    # (UNVERIFIED for every client; HTML bodies are kept as sent).
    return body if body.lstrip().startswith("<") else f"<p>{html.escape(body)}</p>"


def _attachments(body: dict[str, Any]) -> list[JSON]:
    urls = body.get("attachment_urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise IntercomAPIError.invalid("attachment_urls must be an array of URLs")
    if len(urls) > _MAX_ATTACHMENTS:
        raise IntercomAPIError.invalid(
            "attachment_urls can include up to 10 URLs", field="attachment_urls"
        )
    return [attachment_from_url(url) for url in urls]


class ConversationService:
    """Conversation operations on an :class:`IntercomState`."""

    def __init__(self, state: IntercomState) -> None:
        self.state = state
        #: no snooze ends before this (None: none is set); ``wake_due`` runs before every
        #: request, so it must not scan every conversation when nothing can be due
        self._next_wake: int | None = None

    def get(self, conversation_id: str) -> Conversation:
        conversation = self.state.conversations.get(conversation_id)
        if conversation is None:
            raise IntercomAPIError.not_found("Resource Not Found")
        return conversation

    def render(self, conversation: Conversation, parts: list[Part] | None = None) -> JSON:
        return render_conversation(self.state, conversation, parts)

    def _event(self, topic: str, conversation: Conversation, parts: list[Part]) -> Event:
        return Event(topic, self.render(conversation, parts))

    def _add_part(
        self, conversation: Conversation, part_type: str, author: JSON, **kw: Any
    ) -> Part:
        state = self.state
        at = kw.pop("created_at", None) or state.now()
        part = Part(state.next_id("part"), part_type, at, author, conversation.state, **kw)
        conversation.parts.append(part)
        conversation.updated_at = max(conversation.updated_at, state.now())
        stats = conversation.statistics
        stats["count_conversation_parts"] = len(conversation.parts)
        if author.get("type") == "admin" and author["id"] not in conversation.teammate_ids:
            conversation.teammate_ids.append(author["id"])
        return part

    # -- create -----------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> tuple[JSON, list[Event]]:
        """``POST /conversations``: a contact starts a conversation; returns the message."""
        sender = body.get("from")
        if not isinstance(sender, dict) or not sender.get("id") or not sender.get("type"):
            raise IntercomAPIError.missing("from")
        text = optional_str(body, "body")
        if not text:
            raise IntercomAPIError.missing("body")
        if sender["type"] not in {"user", "lead", "contact"}:
            raise IntercomAPIError.invalid("from.type must be user, lead or contact")
        contact = self.state.contacts.get(str(sender["id"]))
        if contact is None or sender["type"] not in {"contact", contact.role}:
            raise IntercomAPIError.not_found("User Not Found")
        state = self.state
        now = state.now()
        created_at = optional_int(body, "created_at") or now
        message_id = state.next_id("message")
        conversation = Conversation(
            id=state.next_id("conversation"),
            created_at=created_at,
            updated_at=now,
            contact_ids=[contact.id],
            source={
                "type": "conversation",
                "id": message_id,
                "delivered_as": "customer_initiated",
                "subject": optional_str(body, "subject") or "",
                "body": as_html(text),
                "author": contact.author(),
                "attachments": _attachments(body),
                "url": None,
                "redacted": False,
            },
            waiting_since=created_at,
            seq=int(state.next_id("sequence")),
            statistics={
                "first_contact_reply_at": created_at,
                "last_contact_reply_at": created_at,
                "count_reopens": 0,
                "count_assignments": 0,
                "count_conversation_parts": 0,
            },
        )
        state.conversations[conversation.id] = conversation
        contact.last_replied_at = created_at
        message = {
            "type": "user_message",
            "id": message_id,
            "created_at": created_at,
            "body": text,
            "message_type": "inapp",
            "conversation_id": conversation.id,
        }
        return message, [self._event("conversation.user.created", conversation, [])]

    # -- replies ----------------------------------------------------------------------------

    def _replying_contact(self, conversation: Conversation, body: dict[str, Any]) -> Contact:
        state = self.state
        contact: Contact | None = None
        if body.get("intercom_user_id"):
            contact = state.contacts.get(str(body["intercom_user_id"]))
        elif body.get("user_id"):
            contact = state.contact_by_user_id(str(body["user_id"]))
        elif body.get("email"):
            contact = state.contact_by_email(str(body["email"]))
        else:
            raise IntercomAPIError.missing("intercom_user_id")
        if contact is None:
            raise IntercomAPIError.not_found("User Not Found")
        if contact.id not in conversation.contact_ids:
            conversation.contact_ids.append(contact.id)
        return contact

    def reply(self, conversation_id: str, body: dict[str, Any]) -> tuple[Conversation, list[Event]]:
        """``POST /conversations/{id}/reply`` as a contact (comment) or admin (comment/note)."""
        conversation = self.get(conversation_id)
        message_type, kind = body.get("message_type"), body.get("type")
        text = optional_str(body, "body")
        attachments = _attachments(body)
        created_at = optional_int(body, "created_at")
        now = self.state.now()
        stats = conversation.statistics
        if kind == "user":
            if message_type != "comment":
                raise IntercomAPIError.invalid("message_type must be comment", field="message_type")
            if not text:
                raise IntercomAPIError.missing("body")
            contact = self._replying_contact(conversation, body)
            if conversation.state == "closed":
                stats["count_reopens"] = stats.get("count_reopens", 0) + 1
            conversation.state, conversation.snoozed_until = "open", None
            conversation.waiting_since = conversation.waiting_since or now
            stats.setdefault("first_contact_reply_at", now)
            stats["last_contact_reply_at"] = now
            contact.last_replied_at = now
            part = self._add_part(
                conversation,
                "comment",
                contact.author(),
                body=as_html(text),
                attachments=attachments,
                created_at=created_at,
            )
            return conversation, [self._event("conversation.user.replied", conversation, [part])]
        if kind != "admin":
            raise IntercomAPIError.invalid("type must be admin or user", field="type")
        admin = self.state.admin(body.get("admin_id"))
        if message_type not in {"comment", "note"}:
            raise IntercomAPIError.invalid(
                "message_type must be comment or note", field="message_type"
            )
        if not text:
            raise IntercomAPIError.missing("body")
        part = self._add_part(
            conversation,
            message_type,
            admin.author(),
            body=as_html(text),
            attachments=attachments,
            created_at=created_at,
        )
        if message_type == "note":
            return conversation, [self._event("conversation.admin.noted", conversation, [part])]
        conversation.waiting_since = None
        stats.setdefault("first_admin_reply_at", now)
        stats["last_admin_reply_at"] = now
        return conversation, [self._event("conversation.admin.replied", conversation, [part])]

    # -- close / open / snooze / assign -----------------------------------------------------

    def manage(
        self, conversation_id: str, body: dict[str, Any]
    ) -> tuple[Conversation, list[Event]]:
        """``POST /conversations/{id}/parts``."""
        conversation = self.get(conversation_id)
        message_type = body.get("message_type")
        admin = self.state.admin(body.get("admin_id"))
        text = optional_str(body, "body")
        stats = conversation.statistics
        now = self.state.now()
        if message_type == "close":
            conversation.state, conversation.snoozed_until = "closed", None
            conversation.waiting_since = None
            stats.setdefault("first_close_at", now)
            stats["last_close_at"], stats["last_closed_by_id"] = now, admin.id
            part = self._add_part(conversation, "close", admin.author(), body=_opt_html(text))
            topic = "conversation.admin.closed"
        elif message_type == "open":
            if conversation.state == "closed":
                stats["count_reopens"] = stats.get("count_reopens", 0) + 1
            # Opening a snoozed conversation is how an admin unsnoozes it (module docstring).
            snoozed = conversation.state == "snoozed"
            conversation.state, conversation.snoozed_until = "open", None
            part = self._add_part(conversation, "open", admin.author(), body=_opt_html(text))
            topic = "conversation.admin.unsnoozed" if snoozed else "conversation.admin.opened"
        elif message_type == "snoozed":
            until = optional_int(body, "snoozed_until")
            if until is None:
                raise IntercomAPIError.missing("snoozed_until")
            if until <= now:
                raise IntercomAPIError.invalid(
                    "snoozed_until must be in the future", field="snoozed_until"
                )
            conversation.state, conversation.snoozed_until = "snoozed", until
            self._next_wake = until if self._next_wake is None else min(self._next_wake, until)
            part = self._add_part(conversation, "snoozed", admin.author())
            topic = "conversation.admin.snoozed"
        elif message_type == "assignment":
            part = self._assign(conversation, admin, body, text)
            topic = "conversation.admin.assigned"
        else:
            raise IntercomAPIError.invalid(
                "message_type must be one of close, open, snoozed, assignment",
                field="message_type",
            )
        return conversation, [self._event(topic, conversation, [part])]

    def _assign(
        self, conversation: Conversation, admin: Admin, body: dict[str, Any], text: str | None
    ) -> Part:
        kind = body.get("type")
        assignee = body.get("assignee_id")
        if kind not in {"admin", "team"}:
            raise IntercomAPIError.invalid("type must be admin or team", field="type")
        if assignee is None or str(assignee) == "":
            raise IntercomAPIError.missing("assignee_id")
        assignee = str(assignee)
        unassign = assignee == "0"
        if kind == "admin":
            if not unassign and assignee not in self.state.admins:
                raise IntercomAPIError(404, "assignee_not_found", "Assignee not found")
            conversation.admin_assignee_id = None if unassign else int(assignee)
        else:
            if not unassign and int(assignee) not in self.state.config.team_ids:
                raise IntercomAPIError(404, "assignee_not_found", "Assignee not found")
            conversation.team_assignee_id = None if unassign else int(assignee)
        stats = conversation.statistics
        now = self.state.now()
        stats["count_assignments"] = stats.get("count_assignments", 0) + 1
        stats.setdefault("first_assignment_at", now)
        stats["last_assignment_at"] = now
        assigned_to = None if unassign else {"type": kind, "id": assignee}
        return self._add_part(
            conversation,
            "assignment",
            admin.author(),
            body=_opt_html(text),
            assigned_to=assigned_to,
        )

    def wake_due(self, topic: str | None) -> list[Event]:
        """Reopen every snoozed conversation whose ``snoozed_until`` has passed ("The time
        you want the conversation to reopen", ``snooze_conversation_request``); a
        notification of ``topic`` for each only when one is configured (module docstring)."""
        now = self.state.now()
        if self._next_wake is None or self._next_wake > now:
            return []
        events: list[Event] = []
        later: list[int] = []
        for conversation in self.state.conversations.values():
            until = conversation.snoozed_until
            if conversation.state != "snoozed" or until is None:
                continue
            if until > now:
                later.append(until)
                continue
            conversation.state, conversation.snoozed_until = "open", None
            conversation.updated_at = max(conversation.updated_at, until)
            if topic is not None:
                events.append(self._event(topic, conversation, []))
        self._next_wake = min(later, default=None)
        return events

    def set_priority(self, conversation_id: str, body: dict[str, Any]) -> list[Event]:
        """A teammate marks the conversation as priority (``priority``) or not
        (``not_priority``) in the inbox; an unchanged value sends nothing."""
        conversation = self.get(conversation_id)
        self.state.admin(body.get("admin_id"))
        priority = body.get("priority")
        if priority not in {"priority", "not_priority"}:
            raise IntercomAPIError.invalid(
                "priority must be priority or not_priority", field="priority"
            )
        if conversation.priority == priority:
            return []
        conversation.priority = str(priority)
        conversation.updated_at = max(conversation.updated_at, self.state.now())
        return [self._event("conversation.priority.updated", conversation, [])]

    # -- tags, attributes, delete -----------------------------------------------------------

    def tag(self, conversation_id: str, body: dict[str, Any]) -> tuple[Tag, list[Event]]:
        conversation = self.state.conversations.get(conversation_id)
        if conversation is None:
            raise IntercomAPIError.not_found("Conversation not found")
        admin = self.state.admin(body.get("admin_id"))
        tag = self.state.tag(body.get("id"))
        if any(t.tag_id == tag.id for t in conversation.tags):
            return tag, []
        now = self.state.now()
        conversation.tags.append(AppliedTag(tag.id, now, {"type": "admin", "id": admin.id}))
        conversation.updated_at = max(conversation.updated_at, now)
        # The notification carries the conversation plus the tags just added (UNVERIFIED
        # field name `tags_added`, as seen in Intercom's conversation_part.tag.created samples).
        item = self.render(conversation, []) | {
            "tags_added": {"type": "tag.list", "tags": [tag.basic()]}
        }
        return tag, [Event("conversation_part.tag.created", item)]

    def untag(self, conversation_id: str, tag_id: str, body: dict[str, Any]) -> Tag:
        """``DELETE /conversations/{id}/tags/{tag_id}``; no notification (module docstring)."""
        conversation = self.state.conversations.get(conversation_id)
        if conversation is None:
            raise IntercomAPIError.not_found("Conversation not found")
        self.state.admin(body.get("admin_id"))
        tag = self.state.tag(tag_id)
        applied = [t for t in conversation.tags if t.tag_id == tag.id]
        if not applied:
            raise IntercomAPIError(404, "tag_not_found", "Tag not found")
        conversation.tags.remove(applied[0])
        conversation.updated_at = max(conversation.updated_at, self.state.now())
        return tag

    def update(self, conversation_id: str, body: dict[str, Any]) -> Conversation:
        """``PUT /conversations/{id}``: read flag, title and custom attributes."""
        conversation = self.get(conversation_id)
        custom = self.state.check_custom_attributes("conversation", body.get("custom_attributes"))
        changed = False
        if "read" in body:
            if not isinstance(body["read"], bool):
                raise IntercomAPIError.invalid("read must be a boolean", field="read")
            changed |= conversation.read != body["read"]
            conversation.read = body["read"]
        if "title" in body:
            title = optional_str(body, "title")
            changed |= conversation.title != title
            conversation.title = title
        for name, value in custom.items():
            changed |= conversation.custom_attributes.get(name) != value
            conversation.custom_attributes[name] = value
        if changed:
            conversation.updated_at = max(conversation.updated_at, self.state.now())
        return conversation

    def delete(self, conversation_id: str) -> tuple[JSON, list[Event]]:
        self.get(conversation_id)
        del self.state.conversations[conversation_id]
        deleted = {"id": conversation_id, "object": "conversation", "deleted": True}
        return deleted, [
            Event("conversation.deleted", {"type": "conversation", "id": conversation_id})
        ]


def _opt_html(text: str | None) -> str | None:
    return as_html(text) if text else None
