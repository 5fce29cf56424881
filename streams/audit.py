"""Audit records: one for every decision the sync makes and every write a sink does.

Ids are deterministic (link, cause, decision): a replay of the same events produces the same
audit ids, so the audit topic can be deduplicated by id downstream.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from schemas.ids import uuid5_text
from schemas.models import AuditRecord

__all__ = ["AUDIT_NAMESPACE", "audit"]

AUDIT_NAMESPACE = uuid.UUID("3c1d9a8e-7f44-4b4b-8f3e-6a2f0b1c5d77")


def audit(
    link_id: str | None,
    stage: str,
    decision: str,
    reason: str,
    *,
    at: datetime,
    event_id: str | None = None,
    command_id: str | None = None,
    details: dict[str, str] | None = None,
) -> AuditRecord:
    cause = event_id or command_id or at.isoformat()
    audit_id = uuid5_text(AUDIT_NAMESPACE, f"{link_id}\x1f{cause}\x1f{stage}\x1f{decision}")
    return AuditRecord(
        audit_id=audit_id,
        link_id=link_id,
        at=at,
        stage=stage,
        decision=decision,
        reason=reason,
        event_id=event_id,
        command_id=command_id,
        details=details or {},
    )
