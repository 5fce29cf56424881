"""What a sink's attempt at a command becomes: a write result (back to the sync stage), an
audit record, and for failures a dead letter with the full error. Pure builders."""

from __future__ import annotations

from datetime import datetime

from connectors.base.sink import SinkResult
from schemas.models import AuditRecord, DeadLetter, SyncCommand, WriteOutcome, WriteResult
from streams.audit import audit

__all__ = ["failure", "success"]


def success(
    command: SyncCommand,
    result: SinkResult,
    *,
    latency_ms: float,
    now: datetime,
    end_to_end_ms: float | None = None,
) -> tuple[WriteResult, AuditRecord]:
    """``end_to_end_ms``: from the causing change reaching Deskstream to this write starting."""
    outcome = WriteOutcome.WRITTEN if result.written else WriteOutcome.UNCHANGED
    write = WriteResult(
        command_id=command.command_id,
        link_id=command.link_id,
        target=command.target,
        outcome=outcome,
        target_entity_id=result.target_entity_id,
        status_code=result.status_code,
        latency_ms=latency_ms,
        fingerprints=result.fingerprints,
        written_at=now,
        created_ids=result.created_ids,
        api_calls=result.api_calls,
        skipped_fields=result.skipped,
    )
    target = command.target
    record = audit(
        command.link_id,
        "sink",
        f"{outcome.value}_{target.entity_type.value}_on_{target.platform.value}",
        result.detail
        or f"{command.action.value} {target.entity_type.value} on {target.platform.value}",
        at=now,
        command_id=command.command_id,
        event_id=command.caused_by_event_id,
        details={
            "record": result.target_entity_id or "",
            "api_calls": str(result.api_calls),
            "latency_ms": f"{latency_ms:.0f}",
            **({"end_to_end_ms": f"{end_to_end_ms:.1f}"} if end_to_end_ms is not None else {}),
            **({"skipped": ",".join(result.skipped)} if result.skipped else {}),
        },
    )
    return write, record


def failure(
    command: SyncCommand,
    *,
    kind: str,
    message: str,
    status: int | None,
    attempts: int,
    first_failed_at: datetime,
    latency_ms: float,
    now: datetime,
) -> tuple[WriteResult, AuditRecord, DeadLetter]:
    write = WriteResult(
        command_id=command.command_id,
        link_id=command.link_id,
        target=command.target,
        outcome=WriteOutcome.FAILED,
        status_code=status,
        latency_ms=latency_ms,
        error=message,
        written_at=now,
    )
    target = command.target
    record = audit(
        command.link_id,
        "sink",
        f"failed_{target.entity_type.value}_on_{target.platform.value}",
        f"{kind} after {attempts} attempt(s): {message}; the command is in the dead-letter "
        "topic (`deskstream dlq list`)",
        at=now,
        command_id=command.command_id,
        event_id=command.caused_by_event_id,
        details={"status": str(status or ""), "attempts": str(attempts)},
    )
    letter = DeadLetter(
        command=command,
        error_kind=kind,
        error_message=message,
        status_code=status,
        attempts=attempts,
        first_failed_at=first_failed_at,
        last_failed_at=now,
    )
    return write, record, letter
