"""A stored ``POST /handoff`` body becomes one canonical Handoff event.

The event id derives from the client and its conversation id only, so a repeated POST (a
client retrying after a timeout, or a second hand-off of the same conversation) is the same
event and normalize's dedupe keeps one. The link is the conversation's own case link; the
sync stage routes it from there (``streams.flows.handoff``).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import ValidationError

from connectors.ai_agent.models import HandoffRequest
from connectors.base.links import case_link_id
from connectors.base.normalize import Normaliser, event_id, parse_json, validation_problems
from schemas.errors import SkippableRecordError
from schemas.models import (
    Actor,
    ActorKind,
    Contact,
    EntityType,
    Envelope,
    Handoff,
    Op,
    Platform,
    RawDelivery,
    Source,
    TranscriptLine,
)

__all__ = ["EVENT_TYPE", "AiAgentNormaliser", "handoff_event_id"]

EVENT_TYPE = "handoff.requested"
_ROLES = {"customer": ActorKind.CUSTOMER, "ai": ActorKind.AI, "agent": ActorKind.AGENT}


def handoff_event_id(connector_id: str, conversation_id: str) -> str:
    """The Handoff event's id: the answer to every POST of this conversation."""
    return event_id(connector_id, f"handoff:{conversation_id}")


def to_handoff(request: HandoffRequest, connector_id: str) -> Handoff:
    customer = request.customer
    return Handoff(
        case_id=request.conversation_id,
        reason=request.reason,
        sentiment=request.sentiment,
        intent=request.intent,
        summary=request.summary,
        collected_fields=request.collected_fields,
        transcript=[
            TranscriptLine(author=Actor(kind=_ROLES[line.role]), text=line.text, at=line.at)
            for line in request.transcript
        ],
        target=request.target,
        customer=Contact(
            emails=[customer.email] if customer.email else [],
            external_id=customer.external_id,
            name=customer.name,
            phone=customer.phone,
        ),
        segment=request.segment,
        client_id=connector_id,
        metadata=request.metadata,
    )


class AiAgentNormaliser(Normaliser):
    platform: ClassVar[str] = "ai_agent"

    def normalise(self, delivery: RawDelivery) -> list[Envelope]:
        try:
            request = HandoffRequest.model_validate(parse_json(delivery.body))
        except ValidationError as exc:
            # POST /handoff validated it already: only a body stored otherwise gets here.
            raise SkippableRecordError(
                f"not a hand-off request: {validation_problems(exc)}; fix the client and resend"
            ) from None
        connector = delivery.connector_id
        conversation = request.conversation_id
        return [
            Envelope(
                event_id=handoff_event_id(connector, conversation),
                source=Source(
                    platform=Platform.AI_AGENT,
                    connector_id=connector,
                    entity_type=EntityType.HANDOFF,
                    entity_id=conversation,
                    event_type=EVENT_TYPE,
                    source_event_id=f"handoff:{conversation}",
                    actor=Actor(kind=ActorKind.AI, id=connector),
                    occurred_at=request.requested_at or delivery.received_at,
                ),
                op=Op.CREATE,
                data=to_handoff(request, connector),
                link_id=case_link_id(Platform.AI_AGENT.value, connector, conversation),
                ingested_at=delivery.received_at,
            )
        ]
