"""The demo's story: a customer asks the AI agent about a double charge, gets escalated to a
human, and the case is solved. Each step is one event as an in-house system would post it to
the generic connector; the platform connectors produce the same canonical events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["story"]

CUSTOMER = {
    "kind": "customer",
    "id": "cus-1001",
    "email": "maria.lopez@example.com",
    "name": "Maria Lopez",
}
AI = {"kind": "ai", "id": "fin", "name": "Fin"}
AGENT = {"kind": "agent", "id": "agent-7", "email": "sam@support.example.com", "name": "Sam"}


def _event(
    n: str,
    at: datetime,
    entity_type: str,
    entity_id: str,
    op: str,
    actor: dict[str, Any],
    data: dict[str, Any],
    changed: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "source": {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "event_type": f"{entity_type}.{op}d" if op != "update" else f"{entity_type}.updated",
            "source_event_id": f"demo-{n}",
            "actor": actor,
            "occurred_at": at.isoformat(),
        },
        "op": op,
        "changed_fields": changed or [],
        "data": data,
    }


def story(start: datetime | None = None, *, run: str = "") -> list[dict[str, Any]]:
    """The story's events; ``run`` goes into their source event ids, so a second run is new
    events, not redeliveries that the worker's dedupe drops (the ids are what it remembers)."""
    t = start or datetime.now(UTC).replace(microsecond=0)
    prefix = f"{run}-" if run else ""
    case = {
        "type": "case",
        "subject": "Charged twice for my March invoice",
        "tags": ["billing"],
        "requester": CUSTOMER,
        "channel": "messenger",
    }
    return [
        _event(
            f"{prefix}1",
            t,
            "contact",
            "cus-1001",
            "create",
            CUSTOMER,
            {
                "type": "contact",
                "emails": ["maria.lopez@example.com"],
                "external_id": "cus-1001",
                "name": "Maria Lopez",
                "company": "Lopez Bakery",
                "plan": "premium",
                "custom_attributes": {"mrr": 249.0, "beta": True},
            },
        ),
        _event(
            f"{prefix}2",
            t + timedelta(seconds=5),
            "case",
            "conv-88",
            "create",
            CUSTOMER,
            {**case, "status": "new", "priority": "normal"},
        ),
        _event(
            f"{prefix}3",
            t + timedelta(seconds=6),
            "message",
            "part-1",
            "create",
            CUSTOMER,
            {
                "type": "message",
                "case_id": "conv-88",
                "author": CUSTOMER,
                "public": True,
                "body_text": "I was charged twice for March. Invoice attached.",
                "created_at": (t + timedelta(seconds=6)).isoformat(),
                "attachments": [
                    {
                        "name": "invoice-march.pdf",
                        "content_type": "application/pdf",
                        "size_bytes": 48213,
                        "source_url": "https://files.example.com/inv.pdf",
                    }
                ],
            },
        ),
        _event(
            f"{prefix}4",
            t + timedelta(seconds=9),
            "message",
            "part-2",
            "create",
            AI,
            {
                "type": "message",
                "case_id": "conv-88",
                "author": AI,
                "public": True,
                "body_text": "I'm sorry about that. Refunds need a person; connecting you now.",
                "created_at": (t + timedelta(seconds=9)).isoformat(),
            },
        ),
        _event(
            f"{prefix}5",
            t + timedelta(seconds=10),
            "handoff",
            "conv-88",
            "create",
            AI,
            {
                "type": "handoff",
                "case_id": "conv-88",
                "reason": "refund requires a human",
                "sentiment": "frustrated",
                "intent": "billing.duplicate_charge",
                "summary": (
                    "Premium customer charged twice for March; invoice attached; wants a refund."
                ),
                "collected_fields": {"invoice": "INV-2026-03-1181", "amount": "249.00 EUR"},
                "transcript": [
                    {
                        "author": CUSTOMER,
                        "text": "I was charged twice for March.",
                        "at": (t + timedelta(seconds=6)).isoformat(),
                    },
                    {
                        "author": AI,
                        "text": "Connecting you with a person.",
                        "at": (t + timedelta(seconds=9)).isoformat(),
                    },
                ],
            },
        ),
        _event(
            f"{prefix}6",
            t + timedelta(minutes=4),
            "case",
            "conv-88",
            "update",
            AGENT,
            {**case, "status": "open", "priority": "high", "assignee": AGENT},
            ["status", "priority", "assignee"],
        ),
        _event(
            f"{prefix}7",
            t + timedelta(minutes=9),
            "case",
            "conv-88",
            "update",
            AGENT,
            {**case, "status": "solved", "priority": "high", "assignee": AGENT},
            ["status"],
        ),
    ]
