"""History to replay: Intercom webhook deliveries of many conversations, as raw records.

Each conversation is a customer's conversation as the Intercom notifications tell it, in the
``notification_event`` envelope the sandbox renders (``sandboxes.intercom.webhooks``) and the
item fields the connector reads (``connectors.intercom.models``): the customer opens it
(``conversation.user.created``), writes again (``conversation.user.replied``), every
``ESCALATE_EVERY``-th is tagged ``escalate`` by a human admin (the rehearsal rules make a
Zendesk ticket of it, so the sinks get commands), an admin answers
(``conversation.admin.replied``) and closes it (``conversation.admin.closed``, a status
change). Keys and delivery ids are the Intercom ingest connector's own, so normalize meets
the records as webhook ingest writes them.

Canonical events: every conversation notification repeats the conversation's first message,
and normalize drops an event id already sent for the same raw key, so a conversation yields
one case event per notification and one message event per distinct message:
:func:`events_of` (checked against the real normaliser in ``tests/bench``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from connectors.base.ingest import WebhookRequest
from connectors.base.normalize import Normaliser
from connectors.intercom.ingest import IntercomIngest
from schemas.models import Platform, RawDelivery
from streams.config import SyncConfig
from streams.flows.handoff import rehomed
from streams.normalize import encode_outcome, normalize_delivery

__all__ = [
    "CONNECTOR",
    "ESCALATE_EVERY",
    "HUMAN_ADMIN",
    "RawRecord",
    "SyncRecord",
    "conversations_for",
    "deliveries",
    "events_of",
    "sync_records",
]

CONNECTOR = "intercom"  # the rehearsal worker's Intercom connector id
HUMAN_ADMIN = "991267002"  # app.rehearsal.HUMAN_ADMIN: a person, not Deskstream's bot
ESCALATE_EVERY = 4
T0 = 1_795_000_000  # unix seconds: the history's first notification
_INGEST = IntercomIngest(connector_id=CONNECTOR, secret=None)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One raw-topic record: its key and the delivery (encoded by the caller)."""

    key: bytes
    delivery: RawDelivery


@dataclass(frozen=True, slots=True)
class SyncRecord:
    """One sync-topic record as normalize writes it: the event's link id and its bytes."""

    key: bytes
    value: bytes


def _escalated(n: int) -> bool:
    return n % ESCALATE_EVERY == 0


def events_of(n: int) -> int:
    """Canonical events conversation ``n`` yields after normalize: one case event per
    notification (4, 5 when tagged) and its three messages (first, reply, answer)."""
    return (5 if _escalated(n) else 4) + 3


def conversations_for(events: int) -> int:
    """The fewest conversations whose events reach ``events``."""
    count = total = 0
    while total < events:
        total += events_of(count)
        count += 1
    return count


def _person(n: int) -> dict[str, Any]:
    return {
        "type": "user",
        "id": f"r-contact-{n}",
        "email": f"replay-{n}@example.com",
        "name": f"Customer {n}",
    }


def _admin() -> dict[str, Any]:
    return {"type": "admin", "id": HUMAN_ADMIN, "email": "ada@sandbox.example", "name": "Ada"}


def _part(
    n: int, k: int, at: int, part_type: str, author: dict[str, Any], body: str | None
) -> dict[str, Any]:
    return {
        "type": "conversation_part",
        "id": f"{n}{k:02d}",
        "part_type": part_type,
        "body": body,
        "created_at": at,
        "updated_at": at,
        "author": author,
        "attachments": [],
    }


def _conversation(
    n: int, at: int, state: str, parts: list[dict[str, Any]], tags: list[str]
) -> dict[str, Any]:
    tag_list = [{"type": "tag", "id": f"t-{t}", "name": t, "applied_by": _admin()} for t in tags]
    return {
        "type": "conversation",
        "id": str(80_000_000 + n),
        "title": None,
        "created_at": T0 + n,
        "updated_at": at,
        "state": state,
        "open": state == "open",
        "priority": "not_priority",
        "admin_assignee_id": None,
        "source": {
            "type": "conversation",
            "id": f"src-{n}",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": f"<p>Order {n} never arrived</p>",
            "author": _person(n),
            "attachments": [],
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [{"type": "contact", "id": f"r-contact-{n}"}],
        },
        "tags": {"type": "tag.list", "tags": tag_list},
        "custom_attributes": {},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts,
            "total_count": len(parts),
        },
    }


def _notifications(n: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """(topic, item, created_at) of conversation ``n``'s notifications, in order."""
    at = T0 + n
    yield "conversation.user.created", _conversation(n, at, "open", [], []), at
    at += 60
    reply = _part(n, 1, at, "comment", _person(n), f"<p>Tracking number TRK{n:07d}</p>")
    yield "conversation.user.replied", _conversation(n, at, "open", [reply], []), at
    tags: list[str] = []
    if _escalated(n):
        at += 60
        tags = ["escalate"]
        item = _conversation(n, at, "open", [], tags)
        item["tags_added"] = {"type": "tag.list", "tags": item["tags"]["tags"]}
        yield "conversation_part.tag.created", item, at
    at += 60
    answer = _part(n, 2, at, "comment", _admin(), f"<p>Re-shipped order {n}</p>")
    yield "conversation.admin.replied", _conversation(n, at, "open", [answer], tags), at
    at += 60
    close = _part(n, 3, at, "close", _admin(), None)
    yield "conversation.admin.closed", _conversation(n, at, "closed", [close], tags), at


def deliveries(conversations: int, *, received_at: datetime | None = None) -> Iterator[RawRecord]:
    """The raw records of ``conversations`` conversations, conversation after conversation
    (order across keys does not matter: each conversation keeps its key and so its order)."""
    received = received_at or datetime.now(UTC)
    for n in range(conversations):
        for k, (topic, item, at) in enumerate(_notifications(n)):
            envelope = {
                "type": "notification_event",
                "app_id": "replay-app",
                "data": {"type": "notification_event_data", "item": item},
                "links": {},
                "id": f"notif_replay_{n}_{k}",
                "topic": topic,
                "delivery_status": "pending",
                "delivery_attempts": 1,
                "delivered_at": 0,
                "first_sent_at": at,
                "created_at": at,
                "self": None,
            }
            body = json.dumps(envelope).encode()
            request = WebhookRequest(
                connector_id=CONNECTOR, headers={}, body=body, received_at=received
            )
            delivery = RawDelivery(
                delivery_id=_INGEST.delivery_id(request),
                connector_id=CONNECTOR,
                platform=Platform.INTERCOM,
                received_at=received,
                body=body,
                content_type="application/json",
                signature_verified=True,
            )
            yield RawRecord(_INGEST.partition_key(request).encode(), delivery)


def sync_records(
    records: Iterable[RawRecord], normaliser: Normaliser, rules: SyncConfig | None
) -> Iterator[SyncRecord]:
    """What normalize writes onto the sync topic for ``records``, worked out here (for a
    replay of the sync stage alone): the same normaliser, the hand-off rule's re-homing, the
    same encoding, and its dedupe of an event id already sent for the same raw key (the
    records come conversation after conversation, so only the current key's ids are kept)."""
    key, sent = b"", set[str]()
    for record in records:
        if record.key != key:
            key, sent = record.key, set()
        now = record.delivery.received_at
        outcome = normalize_delivery(record.delivery, normaliser, now=now)
        if rules is not None:
            outcome = replace(outcome, events=[rehomed(event, rules) for event in outcome.events])
        encoded = encode_outcome(
            outcome, record.delivery, max_bytes=1 << 20, now=now, where="in the replay"
        )
        if encoded.quarantined is not None:
            raise ValueError(f"the replay's history was quarantined: {encoded.quarantined[0]}")
        for event, data in encoded.events:
            if event.event_id in sent or event.link_id is None:
                continue
            sent.add(event.event_id)
            yield SyncRecord(event.link_id.encode(), data)
