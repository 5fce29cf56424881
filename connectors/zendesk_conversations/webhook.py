"""Split a verified Sunshine Conversations webhook payload into its events.

The official spec (``sunshine-conversations-openapi.yaml``, ``x-webhooks/Webhook Event``):
"A webhook payload contains an array of events, which may or may not originate from the same
user or conversation. When processing webhook payloads, your application should take care to
process each event in the array." Each event carries its own ``id`` (the key receivers
deduplicate on: ``components/schemas/eventSubSchema`` says it "may be used to ensure that an
event is not processed twice in the case of a webhook that is re-tried"), ``type``,
``createdAt`` and ``payload``. A retry re-sends the whole payload, so one delivery can carry
events already seen next to new ones: the ingest must read every event, never ``events[0]``.

This module is pure: it takes the parsed JSON of a payload whose ``X-API-Key`` has already
been checked and returns one :class:`SunshineEvent` per element, in the order sent. A payload
that is not the v2 envelope, or an event without its four fields, raises
:class:`~schemas.errors.SkippableRecordError` (quarantine the delivery with the reason; a valid
sibling is not silently dropped by reading half a payload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.errors import SkippableRecordError

__all__ = ["SunshineEvent", "split_events"]

_REQUIRED = ("id", "type", "createdAt", "payload")


@dataclass(frozen=True, slots=True)
class SunshineEvent:
    """One event of a webhook payload, with the app and webhook it was sent for."""

    id: str
    type: str
    created_at: str
    payload: Mapping[str, Any]
    app_id: str
    webhook_id: str


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SkippableRecordError(f"sunshine webhook: {where} is not an object")
    return value


def _string(event: Mapping[str, Any], name: str, index: int) -> str:
    value = event[name]
    if not isinstance(value, str) or not value:
        raise SkippableRecordError(f"sunshine webhook: events[{index}].{name} is not a string")
    return value


def split_events(body: Mapping[str, Any]) -> list[SunshineEvent]:
    """Every event of the v2 payload ``body``, in the order the platform sent them."""
    app_id = _object(body.get("app"), "app").get("id")
    webhook = _object(body.get("webhook"), "webhook")
    webhook_id = webhook.get("id")
    if not isinstance(app_id, str) or not isinstance(webhook_id, str):
        raise SkippableRecordError("sunshine webhook: app.id or webhook.id is missing")
    if webhook.get("version") != "v2":
        raise SkippableRecordError("sunshine webhook: webhook.version is not v2")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise SkippableRecordError("sunshine webhook: events is not a non-empty array")
    split: list[SunshineEvent] = []
    for index, raw in enumerate(events):
        event = _object(raw, f"events[{index}]")
        missing = [name for name in _REQUIRED if name not in event]
        if missing:
            raise SkippableRecordError(
                f"sunshine webhook: events[{index}] lacks {', '.join(missing)}"
            )
        split.append(
            SunshineEvent(
                id=_string(event, "id", index),
                type=_string(event, "type", index),
                created_at=_string(event, "createdAt", index),
                payload=_object(event["payload"], f"events[{index}].payload"),
                app_id=app_id,
                webhook_id=webhook_id,
            )
        )
    return split
