"""The sinks' dry-run mode (``DESKSTREAM_SINK_DRY_RUN``), for benchmarks only: the sink
runtime does everything it does for a command (decode, lanes, retries, metrics, the write
result, the audit record, the acks) except calling the platform, and answers every command
as written, so the sync stage's own cost can be measured without the platforms'. Off by
default; a worker with it on writes nothing anywhere and says so at start.

The answer is what a sink would report, with made-up ids: the record (the command's target,
or a new id for a create), one id per thread message and per appended message, and a
fingerprint per changed field (the sync stage settles the fields the fingerprints name).
Ids derive from the command, so a command run twice gets the same answer.
"""

from __future__ import annotations

import uuid

from connectors.base.commands import CREATED_MESSAGE, thread_key
from connectors.base.fingerprints import fingerprint
from connectors.base.sink import SinkResult
from schemas.ids import uuid5_hex
from schemas.models import EntityType, SyncCommand

__all__ = ["DRY_RUN_PREFIX", "dry_run_result"]

#: every id a dry run makes up starts with it
DRY_RUN_PREFIX = "dry-run-"
_NAMESPACE = uuid.UUID("5b0f6a52-3c1e-4d8e-9a57-2f4f0f7d9c11")


def _made_up(*parts: str) -> str:
    return DRY_RUN_PREFIX + uuid5_hex(_NAMESPACE, "\x1f".join(parts))[:16]


def dry_run_result(command: SyncCommand) -> SinkResult:
    """What the sink would answer had the platform taken the command as it is."""
    target = command.target
    platform = target.platform.value
    # A create's record is named by its idempotency key: every attempt finds the same one.
    record = target.entity_id or _made_up(command.idempotency_key)
    created = {
        thread_key(i): _made_up(command.command_id, str(i)) for i in range(len(command.thread))
    }
    if target.entity_type is EntityType.MESSAGE:
        created[CREATED_MESSAGE] = _made_up(command.command_id, CREATED_MESSAGE)
    prints = [
        fingerprint(platform, record, name, getattr(command.data, name, None))
        for name in command.changed_fields
    ]
    return SinkResult(
        target_entity_id=record,
        status_code=200,
        api_calls=0,
        written=True,
        fingerprints=prints,
        detail=f"dry run: {command.action.value} {target.entity_type.value} not sent to {platform}",
        created_ids=created,
    )
