"""Build sync commands with deterministic ids and the right idempotency keys.

Commands for one link and one target platform share a Kafka key (``<platform>:<link>``), so
they reach the sink in order: the create of a ticket always runs before the first comment
appended to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from schemas.ids import uuid5_text
from schemas.models import (
    CommandAction,
    Contact,
    EntityData,
    EntityRef,
    EntityType,
    Message,
    Platform,
    SyncCommand,
)
from streams.state import LinkState

__all__ = ["COMMAND_NAMESPACE", "command_key", "make_command"]

COMMAND_NAMESPACE = uuid.UUID("9a6c2e15-0d3b-4f7a-a8e9-5b4c3d2e1f00")


def command_key(command: SyncCommand) -> str:
    return f"{command.target.platform.value}:{command.link_id}"


def make_command(
    state: LinkState,
    *,
    cause_id: str,
    caused_at: datetime | None,
    platform: str,
    connector_id: str,
    entity_type: EntityType,
    action: CommandAction,
    data: EntityData,
    changed_fields: Sequence[str] = (),
    thread: Sequence[Message] = (),
    contact: Contact | None = None,
    options: dict[str, str] | None = None,
    entity_id: str | None = None,
    now: datetime,
    part: str = "",
    backfill: bool = False,
    attempt: int = 1,
) -> SyncCommand:
    command_id = uuid5_text(
        COMMAND_NAMESPACE, f"{cause_id}\x1f{platform}\x1f{action.value}\x1f{part}"
    )
    # A create keeps one key whatever event triggered it, so a second trigger (or a replay
    # after a crash) cannot create a second record; other writes are keyed by their command.
    idempotency_key = (
        f"{state.link_id}:create:{platform}" if action is CommandAction.UPSERT else command_id
    )
    return SyncCommand(
        command_id=command_id,
        link_id=state.link_id,
        target=EntityRef(
            platform=Platform(platform),
            connector_id=connector_id,
            entity_type=entity_type,
            entity_id=entity_id,
        ),
        action=action,
        idempotency_key=idempotency_key,
        caused_by_event_id=cause_id,
        changed_fields=list(changed_fields),
        data=data,
        issued_at=now,
        thread=list(thread),
        contact=contact,
        options=options or {},
        caused_at=caused_at,
        backfill=backfill,
        attempt=attempt,
    )
