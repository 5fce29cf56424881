"""The JSON a generic connector posts: a canonical event without the fields Deskstream owns.

``platform``, ``connector_id``, ``event_id`` and ``ingested_at`` are filled in by Deskstream
from the authenticated delivery, so a sender cannot impersonate another connector.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.models import Actor, EntityType, Op, Timestamp

__all__ = ["GenericEvent", "GenericSource"]


class GenericSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity_type: EntityType
    entity_id: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    source_event_id: str | None = None
    source_version: str | None = None
    actor: Actor
    occurred_at: Timestamp


class GenericEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: GenericSource
    op: Op
    changed_fields: list[str] = Field(default_factory=list)
    #: ``{"type": "contact" | "case" | "message" | "handoff", ...that record's fields}``;
    #: null for deletes
    data: dict[str, Any] | None = None
