"""Canonical events of one Intercom conversation, shared by its two readers: the webhook
normaliser (``connectors.intercom.normalize``) and the polled conversations
(``connectors.intercom.polled``).

**Event ids name the change, not the notification that carried it**, wherever Intercom gives
the change an identity of its own, so a change that reaches Deskstream twice, once pushed and
once polled, has one canonical event id and the sync stage's dedupe drops the second:

| change                                   | source event id                          |
|------------------------------------------|------------------------------------------|
| a message (the conversation's source)    | ``source:<message id>``                  |
| a message (a conversation part)          | ``part:<part id>``                       |
| the conversation created                 | ``source:<message id>:<topic>``          |
| a change made by one part (reply, note,  | ``part:<part id>:<topic>``               |
| close, open, snooze, assignment)         |                                          |
| anything else (tags, priority, a         | ``<notification id>:<entity>:<id>``      |
| notification carrying several parts)     | (webhooks only: a poll cannot know it)   |

A notification carrying exactly one part is the change that part made ("Intercom sends only
the parts the change created"); the topic is in the id because two notifications about the same
part would be two different changes. A poll derives the topic from the part itself
(``part_topic``); where its reading and Intercom's differ, the ids differ and the second report
is still harmless: the sync stage compares values and source times (a report of the same value
at the same time changes nothing), it only costs an audit line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.base.links import case_link_id
from connectors.base.normalize import event_id
from connectors.intercom import models as ic
from schemas.models import (
    Actor,
    EntityData,
    EntityType,
    Envelope,
    Op,
    Platform,
    Source,
)

__all__ = [
    "CASE_TOPICS",
    "CREATED_TOPICS",
    "Builder",
    "case_key",
    "changed_for",
    "created_topic",
    "latest_part",
    "part_topic",
]

#: conversation topics: op and the canonical fields the change touches
CASE_TOPICS: dict[str, tuple[Op, list[str]]] = {
    "conversation.user.created": (Op.CREATE, []),
    "conversation.admin.single.created": (Op.CREATE, []),
    "conversation.user.replied": (Op.UPDATE, []),
    "conversation.admin.replied": (Op.UPDATE, []),
    "conversation.admin.noted": (Op.UPDATE, []),
    "conversation.admin.closed": (Op.UPDATE, ["status"]),
    "conversation.admin.opened": (Op.UPDATE, ["status"]),
    "conversation.admin.snoozed": (Op.UPDATE, ["status"]),
    "conversation.admin.unsnoozed": (Op.UPDATE, ["status"]),
    "conversation.admin.assigned": (Op.UPDATE, ["assignee"]),
    "conversation.priority.updated": (Op.UPDATE, ["priority"]),
    "conversation_part.tag.created": (Op.UPDATE, ["tags"]),
}
CREATED_TOPICS = frozenset({"conversation.user.created", "conversation.admin.single.created"})
#: topics whose one part is the change (tags and priority make no part)
_PART_TOPICS = (
    frozenset(CASE_TOPICS)
    - CREATED_TOPICS
    - {
        "conversation_part.tag.created",
        "conversation.priority.updated",
    }
)
_CUSTOMERS = frozenset({"user", "lead", "contact"})


def changed_for(topic: str, state: str | None) -> list[str]:
    """The fields a conversation topic reports changed; ``state`` is the conversation's after
    the change. A contact's reply reopens a closed or snoozed conversation with no topic of
    its own: the reply is the status change (to open, at the reply's time)."""
    changed = list(CASE_TOPICS[topic][1])
    if topic == "conversation.user.replied" and state == "open":
        changed.append("status")
    return changed


def part_topic(part: ic.ConversationPart, previous_state: str | None) -> str | None:
    """The notification topic Intercom sends for the change ``part`` made, read from the part
    alone (for polls); None for parts no synced topic reports (automated assignments, bot
    parts, attribute changes)."""
    kind, author = part.part_type or "", part.author.type if part.author else None
    if kind == "comment":
        if author in _CUSTOMERS:
            return "conversation.user.replied"
        return "conversation.admin.replied" if author == "admin" else None
    if kind == "note" and author == "admin":
        return "conversation.admin.noted"
    if kind == "close":
        return "conversation.admin.closed"
    if kind == "open":
        # Opening a snoozed conversation is how an admin unsnoozes it.
        snoozed = previous_state == "snoozed"
        return "conversation.admin.unsnoozed" if snoozed else "conversation.admin.opened"
    if kind == "snoozed":
        return "conversation.admin.snoozed"
    if kind == "assignment" and author == "admin":
        return "conversation.admin.assigned"
    return None


def created_topic(source: ic.ConversationSource) -> str:
    """``conversation.user.created`` for a customer's first message, else the admin's."""
    author = source.author.type if source.author else None
    return (
        "conversation.user.created"
        if author in _CUSTOMERS
        else ("conversation.admin.single.created")
    )


def case_key(topic: str, conversation: ic.Conversation, notification_id: str | None) -> str:
    """The source event id of a conversation's case event (module docstring); a webhook's
    falls back to its notification when the change has no identity of its own."""
    source = conversation.source
    if topic in CREATED_TOPICS and source is not None and source.id:
        return f"source:{source.id}:{topic}"
    parts = conversation.parts
    if topic in _PART_TOPICS and len(parts) == 1:
        return f"part:{parts[0].id}:{topic}"
    return f"{notification_id}:conversation:{conversation.id}"


@dataclass(frozen=True, slots=True)
class Builder:
    """Envelopes for one connector's conversations and contacts."""

    connector_id: str
    bot_admin_id: str | None

    def link(self, conversation_id: str) -> str:
        return case_link_id("intercom", self.connector_id, conversation_id)

    def envelope(
        self,
        *,
        source_event_id: str,
        event_type: str,
        occurred_at: datetime,
        ingested_at: datetime,
        entity_type: EntityType,
        entity_id: str,
        op: Op,
        actor: Actor,
        data: EntityData,
        changed: list[str],
        version: int | None,
        link_id: str,
    ) -> Envelope:
        return Envelope(
            event_id=event_id(self.connector_id, source_event_id),
            source=Source(
                platform=Platform.INTERCOM,
                connector_id=self.connector_id,
                entity_type=entity_type,
                entity_id=entity_id,
                event_type=event_type,
                source_event_id=source_event_id,
                source_version=str(version) if version is not None else None,
                actor=actor,
                occurred_at=occurred_at,
            ),
            op=op,
            changed_fields=changed,
            data=data,
            link_id=link_id,
            ingested_at=ingested_at,
        )

    def messages(
        self,
        conversation: ic.Conversation,
        *,
        event_type: str,
        occurred_at: datetime | None,
        ingested_at: datetime,
    ) -> list[Envelope]:
        """One message event per part with something to read, and the conversation's first
        message (its source): every reader carries it, since webhooks arrive in any order and
        a tag can be processed before the creation; the sync stage keeps each message once.
        ``occurred_at`` None: each message at its own time (a poll)."""
        cid, bot = conversation.id, self.bot_admin_id
        sources: list[tuple[str, ic.ConversationPart | ic.ConversationSource, int | None]] = []
        if conversation.source is not None and conversation.source.id:
            sources.append((f"source:{conversation.source.id}", conversation.source, None))
        sources.extend((f"part:{p.id}", p, p.created_at) for p in conversation.parts)
        events = []
        for key, part, created in sources:
            when = _first_time(created, conversation.created_at) or occurred_at or ingested_at
            message = ic.message_from(part, conversation_id=cid, created_at=when, bot_admin_id=bot)
            if message is None:
                continue
            version = getattr(part, "updated_at", None) or created or conversation.updated_at
            events.append(
                self.envelope(
                    source_event_id=key,
                    event_type=event_type,
                    occurred_at=occurred_at or when,
                    ingested_at=ingested_at,
                    entity_type=EntityType.MESSAGE,
                    entity_id=str(part.id),
                    op=Op.CREATE,
                    actor=message.author,
                    data=message,
                    changed=[],
                    version=version,
                    link_id=self.link(cid),
                )
            )
        return events


def latest_part(conversation: ic.Conversation) -> int | None:
    """The conversation's version: its newest part id. Intercom stamps whole seconds, so two
    notifications of the same second are ordered by the parts they have seen (part ids only
    grow; status changes and replies are parts)."""
    ids = [int(p.id) for p in conversation.parts if p.id.isdigit()]
    return max(ids) if ids else None


def _first_time(*candidates: int | None) -> datetime | None:
    return next((t for t in map(ic.unix_time, candidates) if t is not None), None)
