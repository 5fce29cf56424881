"""``POST /handoff``: the AI side hands a conversation to a human (issue 13).

The request goes the way of a webhook (``app.ingest``), with three differences:

- the client names itself (``X-Deskstream-Client``) and must be a connector of platform
  ``ai_agent``; an unknown client gets the same 401 as a wrong key, so ids cannot be probed;
- an authenticated body is validated before anything is stored: 422 naming each field;
- the answer carries the hand-off id, the canonical Handoff event's id. It derives from the
  client and the conversation id only, so a repeated POST gets the very same answer, and
  normalize's dedupe keeps one Handoff event downstream.

"Accepted" means Kafka acknowledged the stored request with ``acks=all``; the Handoff event is
derived from it deterministically (normalize), as every webhook's events are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.ingest import BodyStream, WebhookIngest
from connectors.ai_agent.ingest import CLIENT_HEADER
from connectors.ai_agent.models import HandoffRequest
from connectors.ai_agent.normalize import handoff_event_id
from connectors.base.ingest import WebhookRequest
from connectors.base.normalize import parse_json, validation_problems
from schemas.errors import IngestError, SignatureError, SkippableRecordError

__all__ = ["HandoffIntake"]


def _validated(request: WebhookRequest) -> HandoffRequest:
    try:
        return HandoffRequest.model_validate(parse_json(request.body))
    except SkippableRecordError as exc:
        raise IngestError(f"{exc}; nothing was stored. Send a JSON object", status=422) from None
    except ValidationError as exc:
        raise IngestError(
            f"invalid hand-off: {validation_problems(exc, limit=20)}; nothing was stored. "
            "Fix these fields and send it again",
            status=422,
        ) from None


class HandoffIntake:
    def __init__(self, ingest: WebhookIngest) -> None:
        self._ingest = ingest

    def client(self, headers: Mapping[str, str]) -> str:
        """The calling client's connector id; 401 unless it is a configured AI client."""
        given = next((v for k, v in headers.items() if k.lower() == CLIENT_HEADER), "").strip()
        config = self._ingest.settings.connectors.get(given) if given else None
        if config is None or config.platform != "ai_agent":
            raise SignatureError(
                f"missing or unknown {CLIENT_HEADER} header, or a wrong key; nothing was "
                "stored. Send your client id and key as configured on the worker "
                "(DESKSTREAM_CONNECTORS__<client>__PLATFORM=ai_agent)"
            )
        return given

    async def receive(
        self,
        headers: Mapping[str, str],
        body: BodyStream,
        declared_length: int | None,
        received_at: datetime,
    ) -> dict[str, Any]:
        """Store one hand-off request; the answer every repeat of it gets too."""
        client = self.client(headers)
        validated: list[HandoffRequest] = []
        await self._ingest.receive(
            client,
            headers,
            body,
            declared_length,
            received_at,
            check=lambda request: validated.append(_validated(request)),
        )
        conversation = validated[0].conversation_id
        return {
            "status": "accepted",
            "handoff_id": handoff_event_id(client, conversation),
            "conversation_id": conversation,
        }
