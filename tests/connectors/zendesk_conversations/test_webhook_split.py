"""``split_events`` reads every event of a Sunshine webhook payload, each with its own
id/type/createdAt/payload (spec ``x-webhooks/Webhook Event``)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.zendesk_conversations.webhook import SunshineEvent, split_events
from schemas.errors import SkippableRecordError


def _event(event_id: str, kind: str, conversation: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "createdAt": "2025-03-01T09:00:00.000Z",
        "payload": {"conversation": {"id": conversation, "type": "personal"}},
    }


def _body(*events: Any) -> dict[str, Any]:
    return {
        "app": {"id": "app1"},
        "webhook": {"id": "hook1", "version": "v2"},
        "events": list(events),
    }


def test_every_event_of_a_multi_event_payload_is_returned_in_order() -> None:
    body = _body(
        _event("e1", "conversation:message", "c1"),
        _event("e2", "switchboard:passControl", "c2"),
        _event("e3", "conversation:message", "c1"),
    )
    events = split_events(body)
    assert [e.id for e in events] == ["e1", "e2", "e3"]
    assert [e.type for e in events] == [
        "conversation:message",
        "switchboard:passControl",
        "conversation:message",
    ]
    assert events[1] == SunshineEvent(
        id="e2",
        type="switchboard:passControl",
        created_at="2025-03-01T09:00:00.000Z",
        payload={"conversation": {"id": "c2", "type": "personal"}},
        app_id="app1",
        webhook_id="hook1",
    )


def test_a_single_event_payload_is_one_event() -> None:
    [event] = split_events(_body(_event("e1", "conversation:create", "c1")))
    assert event.payload["conversation"]["id"] == "c1"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param({"events": []}, "app", id="no-app"),
        pytest.param({**_body(), "events": []}, "non-empty", id="empty-events"),
        pytest.param({**_body(), "events": {"id": "x"}}, "non-empty", id="events-not-array"),
        pytest.param(
            {**_body(_event("e1", "t", "c")), "webhook": {"id": "h", "version": "v1"}},
            "v2",
            id="v1-envelope",
        ),
        pytest.param(_body(_event("e1", "t", "c"), "oops"), "events[1]", id="event-not-object"),
        pytest.param(
            _body(_event("e1", "t", "c"), {"id": "e2", "type": "t", "payload": {}}),
            "events[1] lacks createdAt",
            id="event-without-createdAt",
        ),
        pytest.param(
            _body({**_event("e1", "t", "c"), "id": 7}), "events[0].id", id="id-not-string"
        ),
        pytest.param(
            _body({**_event("e1", "t", "c"), "payload": []}),
            "events[0].payload",
            id="payload-not-object",
        ),
    ],
)
def test_malformed_payloads_are_skippable_with_a_reason(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(SkippableRecordError) as raised:
        split_events(body)
    assert reason in raised.value.reason
