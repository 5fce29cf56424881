"""Generic deliveries are canonical already: validate them and fill in what Deskstream owns."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

from connectors.base.normalize import Normaliser, event_id, parse_json, validation_problems
from connectors.generic.models import GenericEvent
from schemas.errors import SkippableRecordError
from schemas.models import (
    AvroRecord,
    Case,
    Contact,
    EntityType,
    Envelope,
    Handoff,
    Message,
    Platform,
    RawDelivery,
    Source,
)

__all__ = ["GenericNormaliser"]

_DATA_MODELS: dict[EntityType, type[AvroRecord]] = {
    EntityType.CONTACT: Contact,
    EntityType.CASE: Case,
    EntityType.MESSAGE: Message,
    EntityType.HANDOFF: Handoff,
}


class GenericNormaliser(Normaliser):
    platform: ClassVar[str] = "generic"

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        document = parse_json(delivery.body)  # SkippableRecordError naming the problem
        try:
            event = GenericEvent.model_validate(document)
        except ValidationError as exc:
            raise SkippableRecordError(
                f"not a canonical event: {validation_problems(exc)}; fix the sender and resend"
            ) from None
        source = event.source
        return [
            Envelope(
                event_id=event_id(
                    delivery.connector_id, source.source_event_id or delivery.delivery_id
                ),
                source=Source(
                    platform=Platform.GENERIC,
                    connector_id=delivery.connector_id,
                    # Its validated values as they are (a pydantic model keeps its fields in
                    # its __dict__): model_dump() would turn the actor back into a dict for
                    # Source to validate again, 2 of the 26 us this normaliser takes.
                    **vars(source),
                ),
                op=event.op,
                changed_fields=event.changed_fields,
                data=self._data(source.entity_type, event.data),
                ingested_at=delivery.received_at,
            )
        ]

    @staticmethod
    def _data(entity_type: EntityType, data: dict[str, Any] | None) -> Any:
        if data is None:
            return None
        fields = dict(data)
        declared = fields.pop("type", None)
        if declared != entity_type.value:
            raise SkippableRecordError(
                f"data.type is {declared!r} but source.entity_type is {entity_type.value!r}; "
                "they must name the same kind of record; fix the sender and resend"
            )
        try:
            return _DATA_MODELS[entity_type].model_validate(fields)
        except ValidationError as exc:
            problems = validation_problems(exc, prefix="data.")
            raise SkippableRecordError(
                f"invalid {entity_type.value}: {problems}; fix the sender and resend"
            ) from None
