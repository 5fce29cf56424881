"""Admin-initiated messages: ``POST /messages`` (operation ``createMessage`` of the 2.14 spec).

An admin sends an in-app message or an email to contacts. As the spec warns, a message is not a
conversation: Intercom opens one in the inbox only when the contact replies, or at once when the
request sets ``create_conversation_without_contact_reply``. The sandbox cannot emulate a contact
replying in the Messenger, so it opens a conversation only in the second case; the answer then
carries its ``conversation_id`` (the ``message`` model's field) and, for a single recipient,
Intercom's ``conversation.admin.single.created`` notification goes out ("admin initiated 1:1
conversations"; that the API path sends it as the inbox does is UNVERIFIED).

The conversation's ``source`` is the message (``delivered_as: admin_initiated``, the admin as
author, ``source.id`` = the message id, which is how the spec says to find it by search), it
starts ``open`` with no ``waiting_since`` and no ``first_contact_reply``.

Validation follows the spec's documented errors: no body → 400 ``parameter_invalid`` "Body is
required"; an email without subject → 422 ``parameter_not_found``; unknown contacts → 404 (the
"Sending for visitors" note). ``message_type`` accepts the request enum (``in_app``, ``email``),
``inapp`` (the spec's ``anyOf`` title and examples) and ``conversation`` (its admin example), all
answered as ``inapp``; ``cc`` and ``bcc`` are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandboxes.intercom.conversations import ConversationService, as_html
from sandboxes.intercom.errors import IntercomAPIError
from sandboxes.intercom.models import JSON, Admin, Contact, Conversation
from sandboxes.intercom.routes_contacts import Publish, json_response, read_json
from sandboxes.intercom.state import Event, IntercomState, optional_int, optional_str

__all__ = ["create_admin_message", "message_routes"]

_MESSAGE_TYPES = {"in_app": "inapp", "inapp": "inapp", "conversation": "inapp", "email": "email"}


def _recipient(state: IntercomState, value: Any) -> Contact:
    if not isinstance(value, dict) or value.get("type") not in {"user", "lead"}:
        raise IntercomAPIError.invalid("to must be a recipient with type user or lead", field="to")
    contact: Contact | None = None
    if value.get("id"):
        contact = state.contacts.get(str(value["id"]))
    elif value.get("user_id"):
        contact = state.contact_by_user_id(str(value["user_id"]))
    elif value.get("email"):
        contact = state.contact_by_email(str(value["email"]))
    else:
        raise IntercomAPIError.missing("to.id")
    if contact is None or contact.role != value["type"]:
        raise IntercomAPIError.not_found("User Not Found")
    return contact


def _sender(state: IntercomState, value: Any) -> Admin:
    if not isinstance(value, dict) or value.get("id") in (None, ""):
        raise IntercomAPIError.missing("from")
    if value.get("type") != "admin":
        raise IntercomAPIError.invalid("from.type must be admin", field="from")
    return state.admin(value["id"], field="from")


def _owner(admin: Admin) -> JSON:
    return admin.author() | {"away_mode_enabled": False, "away_mode_reassign": False}


def create_admin_message(
    service: ConversationService, body: dict[str, Any]
) -> tuple[JSON, list[Event]]:
    """``POST /messages`` as an admin; returns the ``admin_message`` and its notifications."""
    state = service.state
    admin = _sender(state, body.get("from"))
    raw_type = body.get("message_type")
    if raw_type is None:
        raise IntercomAPIError.missing("message_type")
    if raw_type not in _MESSAGE_TYPES:
        raise IntercomAPIError.invalid("message_type must be in_app or email", field="message_type")
    message_type = _MESSAGE_TYPES[raw_type]
    text = optional_str(body, "body")
    if not text:
        raise IntercomAPIError(400, "parameter_invalid", "Body is required")
    subject = optional_str(body, "subject")
    if message_type == "email" and not subject:
        raise IntercomAPIError(
            422, "parameter_not_found", "No subject supplied for email message", field="subject"
        )
    to = body.get("to")
    if to is None:
        raise IntercomAPIError.missing("to")
    recipients = [_recipient(state, r) for r in (to if isinstance(to, list) else [to])]
    if not recipients:
        raise IntercomAPIError.missing("to")
    opens = body.get("create_conversation_without_contact_reply", False)
    if not isinstance(opens, bool):
        raise IntercomAPIError.invalid(
            "create_conversation_without_contact_reply must be a boolean",
            field="create_conversation_without_contact_reply",
        )
    now = state.now()
    created_at = optional_int(body, "created_at") or now
    message_id = state.next_id("message")
    message: JSON = {
        "type": "admin_message",
        "id": message_id,
        "created_at": created_at,
        "subject": subject or "",
        "body": text,
        "message_type": message_type,
        "owner": _owner(admin),
    }
    for contact in recipients:
        contact.last_contacted_at = now
    if not opens:
        return message, []
    conversation = Conversation(
        id=state.next_id("conversation"),
        created_at=created_at,
        updated_at=now,
        contact_ids=[c.id for c in recipients],
        source={
            "type": "email" if message_type == "email" else "conversation",
            "id": message_id,
            "delivered_as": "admin_initiated",
            "subject": subject or "",
            "body": as_html(text),
            "author": admin.author(),
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        seq=int(state.next_id("sequence")),
        teammate_ids=[admin.id],
        statistics={"count_reopens": 0, "count_assignments": 0, "count_conversation_parts": 0},
    )
    state.conversations[conversation.id] = conversation
    message["conversation_id"] = conversation.id
    if len(recipients) != 1:
        return message, []
    return message, [Event("conversation.admin.single.created", service.render(conversation, []))]


def message_routes(service: ConversationService, publish: Publish) -> list[web.RouteDef]:
    async def create(request: web.Request) -> web.Response:
        message, events = create_admin_message(service, await read_json(request))
        await publish(events)
        return json_response(message)

    return [web.post("/messages", create)]
