"""The records the ingest and normalize benchmarks send: generic-connector case updates.

One JSON body per ``n`` (a case update of one of ``ENTITIES`` cases, its source event id
``bench-<n>``), posted signed as a webhook, or written straight to the raw topic as the
``RawDelivery`` the webhook endpoint would have written (``raw_record``).
"""

from __future__ import annotations

import json
from datetime import datetime

from schemas.codec import encode
from schemas.models import Platform, RawDelivery

__all__ = ["CONNECTOR", "ENTITIES", "generic_body", "raw_record"]

#: the generic connector the benchmarks configure
CONNECTOR = "bench"
#: cases the updates are spread over (and so raw-topic keys)
ENTITIES = 500


def generic_body(n: int) -> bytes:
    return json.dumps(
        {
            "source": {
                "entity_type": "case",
                "entity_id": f"case-{n % ENTITIES}",
                "event_type": "case.updated",
                "source_event_id": f"bench-{n}",
                "actor": {"kind": "agent", "id": "7"},
                "occurred_at": "2026-11-21T10:00:00Z",
            },
            "op": "update",
            "changed_fields": ["status"],
            "data": {"type": "case", "subject": f"Ticket {n}", "status": "open", "tags": ["a"]},
        }
    ).encode()


def raw_record(n: int, received_at: datetime) -> tuple[bytes, bytes]:
    """Key and value of the ``n``-th raw record: a verified delivery of ``generic_body``."""
    delivery = RawDelivery(
        delivery_id=f"bench-raw-{n}",
        connector_id=CONNECTOR,
        platform=Platform.GENERIC,
        received_at=received_at,
        body=generic_body(1_000_000 + n),
        signature_verified=True,
    )
    return f"{CONNECTOR}:case:case-{n % ENTITIES}".encode(), encode(delivery)
