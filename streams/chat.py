"""The live chat bridge's decisions, as plain values: what a record on the chat topic asks
the bridge to do, and what the customer's stream shows of it.

One chat is one ordered log (``deskstream.chat``, keyed by chat id) holding:

- the hand-off that opened it (a Handoff for the live chat target);
- the customer's messages, posted by the chat client (``CUSTOMER_MESSAGE``);
- the desk's events, relayed from ``deskstream.events``: the agents' messages and the
  release of control (the conversation ``solved``), which ends the session;
- the bridge's notices (``STARTED``, ``FAILED``, ``NOT_FORWARDED``).

Pure: the agent (``app.agents.chat``) reads the records, calls the desk and writes the notices.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from schemas.codec import EnvelopeSource
from schemas.models import (
    Actor,
    ActorKind,
    Case,
    CaseStatus,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Op,
    Platform,
    Source,
)

__all__ = [
    "CUSTOMER_MESSAGE",
    "LIVE_CHAT",
    "Action",
    "Notice",
    "chat_key",
    "client_view",
    "decide",
    "is_live_chat",
    "may_be_a_chats",
    "notice",
]

#: The hand-off target that opens a live chat.
LIVE_CHAT: Final = "live_chat"
#: Event type of a message the customer typed in the chat client.
CUSTOMER_MESSAGE: Final = "chat:message"
_NOTICE_IDS = uuid.UUID("0b6f1f0e-9a55-4c1b-8f43-5d7a1c3e2b90")


class Notice(StrEnum):
    """What the bridge tells the customer's stream about the session."""

    STARTED = "chat:started"
    FAILED = "chat:failed"
    NOT_FORWARDED = "chat:not_forwarded"


class Action(StrEnum):
    START = "start"
    FORWARD = "forward"
    END = "end"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    handoff: Handoff | None = None
    message: Message | None = None


def chat_key(client: str, chat_id: str) -> str:
    """The chat's key on ``deskstream.chat`` (and its id on the desk): the chat id scoped by
    the AI client that handed it off. A chat is bound to its client by construction: another
    client naming the same id reads and writes a chat of its own, never this one; two clients
    using the same conversation id get two chats. Client ids are connector ids (no ':')."""
    return f"{client}:{chat_id}"


def is_live_chat(handoff: Handoff) -> bool:
    return handoff.target == LIVE_CHAT


def may_be_a_chats(source: EnvelopeSource, *, desks: frozenset[str]) -> bool:
    """Could the event with this source belong to a live chat (the relay decodes it, then
    decides)? A hand-off (a live chat's when its target is), or an event of a chat desk's
    connector ``desks``. Any other event is not: an Envelope holds a Handoff only under the
    ``handoff`` entity type (``schemas.models``), so this is read from the front of the
    message (``schemas.codec.envelope_source``), its data unread."""
    return source.entity_type is EntityType.HANDOFF or source.connector_id in desks


def decide(event: Envelope, *, desks: frozenset[str]) -> Decision:
    """What one record of a chat asks the bridge to do; ``desks`` are the connector ids of
    the live chat desks (their events come back from the desk)."""
    data = event.data
    from_desk = event.source.connector_id in desks
    if isinstance(data, Handoff) and is_live_chat(data) and not from_desk:
        return Decision(Action.START, handoff=data)
    if (
        isinstance(data, Message)
        and event.source.event_type == CUSTOMER_MESSAGE
        and not from_desk
        and data.author.kind is ActorKind.CUSTOMER
    ):
        return Decision(Action.FORWARD, message=data)
    if from_desk and isinstance(data, Case) and data.status is CaseStatus.SOLVED:
        return Decision(Action.END)
    return Decision(Action.NOTHING)


def notice(
    cause: Envelope,
    kind: Notice,
    *,
    platform: Platform,
    connector_id: str,
    chat_id: str,
    at: datetime,
    text: str | None = None,
) -> Envelope:
    """A session notice for the chat, its id derived from its cause (a re-run sends the same)."""
    fields: dict[str, Any] = {"chat_id": chat_id}
    if text:
        fields["text"] = text
    return Envelope(
        event_id=str(uuid.uuid5(_NOTICE_IDS, f"{cause.event_id}\x1f{kind.value}")),
        source=Source(
            platform=platform,
            connector_id=connector_id,
            entity_type=EntityType.CASE,
            entity_id=chat_id,
            event_type=kind.value,
            source_event_id=cause.event_id,
            actor=Actor(kind=ActorKind.SYSTEM),
            occurred_at=at,
        ),
        op=Op.UPDATE,
        data=Case(
            status=CaseStatus.OPEN if kind is Notice.STARTED else CaseStatus.PENDING,
            custom_fields=fields,
            channel="chat",
        ),
        ingested_at=at,
    )


def _message_view(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "author": {"kind": message.author.kind.value, "name": message.author.name},
        "text": message.body_text,
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "url": a.source_url}
            for a in message.attachments
        ],
        "at": message.created_at.isoformat(),
    }


def client_view(
    event: Envelope, *, desks: frozenset[str], ended_text: str
) -> dict[str, Any] | None:
    """What the customer's stream shows of a record, or None: the agents' (and other bots')
    messages, the session's start, end and troubles. Not the customer's own messages, the
    hand-off, nor our own posts coming back from the desk."""
    data = event.data
    base = {"event_id": event.event_id}
    kind = event.source.event_type
    if kind in {n.value for n in Notice} and isinstance(data, Case):
        return base | {"type": kind.removeprefix("chat:"), "text": data.custom_fields.get("text")}
    if event.source.connector_id not in desks:
        return None
    if isinstance(data, Message) and data.author.kind in (ActorKind.AGENT, ActorKind.AI):
        return base | _message_view(data)
    if isinstance(data, Case) and data.status is CaseStatus.SOLVED:
        return base | {"type": "ended", "text": ended_text}
    return None
