"""The normalising side of a connector: a raw delivery in, canonical events out.

A normaliser is a pure function of the delivery. It returns zero or more canonical events (a
Zendesk delivery can carry several changes; a ``ping`` carries none) or raises
``SkippableRecordError`` with a reason an operator can act on, and the delivery goes to
quarantine with it. Event ids are derived from the delivery, never random, so a redelivered
webhook yields the very same events and downstream dedupe drops them.
"""

from __future__ import annotations

import abc
import uuid
from typing import ClassVar

from pydantic import ValidationError

from app.settings import ConnectorSettings
from schemas.models import Envelope, RawDelivery

__all__ = ["EVENT_ID_NAMESPACE", "Normaliser", "event_id", "validation_problems"]

#: uuid5 namespace for canonical event ids (fixed forever: changing it re-ids every event)
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1a52-5e0b-4d33-9d0e-2f3b6a7c9e10")


def event_id(connector_id: str, source_event_id: str, index: int = 0) -> str:
    """Deterministic event id: the same source event always maps to the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{connector_id}\x1f{source_event_id}\x1f{index}"))


def validation_problems(exc: ValidationError, *, prefix: str = "", limit: int = 5) -> str:
    """What was wrong with a payload, field by field, for a quarantine reason."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
        for err in exc.errors()[:limit]
    )


class Normaliser(abc.ABC):
    platform: ClassVar[str]

    def __init__(self, *, connector_id: str, settings: ConnectorSettings) -> None:
        self.connector_id = connector_id
        self.settings = settings

    @abc.abstractmethod
    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        """Canonical events for one delivery; raise SkippableRecordError to quarantine it."""
