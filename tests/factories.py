"""Factories shared by tests: signed generic deliveries and canonical records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from connectors.generic.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["NOW", "case_event", "signed_headers"]

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


def case_event(entity_id: str = "42", **overrides: Any) -> dict[str, Any]:
    """A generic connector body: an agent set case ``entity_id`` to open, high priority."""
    event: dict[str, Any] = {
        "source": {
            "entity_type": "case",
            "entity_id": entity_id,
            "event_type": "case.updated",
            "source_event_id": f"evt-{entity_id}",
            "actor": {"kind": "agent", "id": "7", "email": "agent@example.com"},
            "occurred_at": "2026-11-21T09:59:00Z",
        },
        "op": "update",
        "changed_fields": ["status", "priority"],
        "data": {
            "type": "case",
            "subject": "Printer on fire",
            "status": "open",
            "priority": "high",
        },
    }
    event.update(overrides)
    return event


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def signed_headers(secret: str, body: bytes, at: datetime = NOW) -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "content-type": "application/json",
    }
