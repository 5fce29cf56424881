"""The command vocabulary between the sync stage and the sinks.

Every ``SyncCommand`` is one of these, whatever the platform (``target.entity_type`` +
``action``); ``data`` is canonical, already mapped to the target's vocabulary by the rules
(tags through the taxonomy, custom fields keyed by the target's field ids, statuses and
priorities canonical: the sink spells them the platform's way).

- case/upsert: create the record mirroring the link, or find the one an earlier attempt
  made (lookup by external id = link id first). ``contact`` is the requester (identity
  resolution: email, secondary emails, external id; create only after every lookup missed);
  ``thread`` is its history (each message with original author and time, customer messages
  public, internal notes private, attachments re-uploaded); ``options`` carry routing.
  ``created_ids`` maps each thread message's canonical id to the platform's id for it.
- case/update: write ``changed_fields`` of ``data`` (status, priority, tags, custom fields,
  subject, assignee); tags as deltas from ``options`` tags_added / tags_removed, never a blind
  overwrite of tags the target owns. ``expect.<field>`` options carry the canonical values the
  sync stage believes the target may hold when this command runs, comma-separated (what it
  last saw, and what its earlier writes still on their way leave there; ``""`` for none): a
  sink with optimistic concurrency (Zendesk ``safe_update``) writes a field only while the
  target holds one of them (or already the new value); a field a person changed meanwhile is
  left out of the write and reported, and the sync stage decides again when that change
  arrives.
  ``updated_stamp`` is the target's last known version (Zendesk ``updated_at``), if any.
  ``assignee`` is the owner: an agent named by email (``Actor(kind=agent, email=...)``),
  None for nobody; the sink finds its own agent with that email
  (``connectors.base.directory.owner_write``), leaves the owner out when it has none
  (``SinkResult.skipped``), and answers the agent's id as ``created_ids["assignee"]``.
- message/append: add one message to ``target.entity_id`` (or, when None, to the record
  whose external id is the link id); ``data.public`` decides public reply or internal note.
- contact/upsert: find (lookups as above) or create the customer, then write
  ``changed_fields``. ``created_ids[CREATED_CONTACT]`` says which: ``CONTACT_CREATED`` or
  ``CONTACT_MATCHED`` (found by a lookup, or matched by the platform's own upsert).
- contact/update: write ``changed_fields`` of ``data`` to ``target.entity_id``.

Message bodies carry their origin: ``attribution(message, platform)`` is the first line the
sink writes above a mirrored message when the target cannot set author and time itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from schemas.models import Message

__all__ = [
    "CONTACT_CREATED",
    "CONTACT_MATCHED",
    "CREATED_CONTACT",
    "CREATED_MESSAGE",
    "CREATED_OWNER",
    "CREATED_VERSION",
    "OPTION_EXPECT_PREFIX",
    "OPTION_GROUP_ID",
    "OPTION_SOURCE_PLATFORM",
    "OPTION_TAGS_ADDED",
    "OPTION_TAGS_REMOVED",
    "OPTION_UNHEARD",
    "OPTION_UPDATED_STAMP",
    "attribution",
    "decode_list",
    "encode_list",
    "thread_key",
]

OPTION_GROUP_ID = "group_id"
OPTION_TAGS_ADDED = "tags_added"
OPTION_TAGS_REMOVED = "tags_removed"
#: ``expect.<field>``: the value the sync stage believed the target held (compare-and-set)
OPTION_EXPECT_PREFIX = "expect."
#: the target record's last known version, for platforms with optimistic concurrency
OPTION_UPDATED_STAMP = "updated_stamp"
#: where a mirrored message came from, for its attribution line
OPTION_SOURCE_PLATFORM = "source_platform"
#: a contact write's fields (``encode_list``) whose value on the target the link has never
#: heard: written because nothing says the target holds them, not to replace a value seen
#: there. A sink that knows from its own answer that the record holds one may leave it out.
OPTION_UNHEARD = "unheard"

#: ``created_ids`` keys: the message of a message/append, and each position of a
#: case/upsert's thread (``thread_key(i)``)
CREATED_MESSAGE = "message"
#: ``created_ids`` key: the record's own version after the write, where the platform has one
#: finer than its clock (Intercom: the newest part id), so the sync stage can order the
#: write against the platform's reports of the same second
CREATED_VERSION = "version"
#: ``created_ids`` key of a contact/upsert: whether it created the contact or found one
CREATED_CONTACT = "contact"
CONTACT_CREATED = "created"
CONTACT_MATCHED = "matched"
#: ``created_ids`` key: the target's own id of the owner a write set (the agent the command's
#: ``assignee`` email resolved to), so the sync stage knows that id when its echo names it
CREATED_OWNER = "assignee"


def thread_key(index: int) -> str:
    return f"thread:{index}"


_PLATFORM_NAMES = {
    "intercom": "Intercom",
    "zendesk": "Zendesk",
    "zendesk_conversations": "Zendesk Messaging",
    "salesforce": "Salesforce",
    "ai_agent": "the AI agent",
    "generic": "an integration",
}


def encode_list(values: Iterable[str]) -> str:
    return json.dumps(sorted(set(values)))


def decode_list(value: str | None) -> list[str]:
    if not value:
        return []
    decoded = json.loads(value)
    return [str(v) for v in decoded] if isinstance(decoded, list) else []


def attribution(message: Message, platform: str) -> str:
    """``Maria Lopez (customer) · 2026-11-21 10:00 UTC · via Intercom``"""
    author = message.author
    who = author.name or author.email or author.id or "unknown"
    at = message.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{who} ({author.kind.value}) · {at} · via {_PLATFORM_NAMES.get(platform, platform)}"
