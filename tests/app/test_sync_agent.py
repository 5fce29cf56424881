"""The sync agent's own logic (the planner is tested in tests/streams)."""

from __future__ import annotations

from app.agents.sync import MAX_RETRIES, _retry_of
from tests.streams.builders import World


def test_a_retried_event_gets_deterministic_ids_and_backs_off_until_spent() -> None:
    event = World().ticket()
    delays = []
    current = event
    while (retry := _retry_of(current)) is not None:
        current, delay = retry
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(delays) == MAX_RETRIES
    assert current.event_id == f"{event.event_id}~retry{MAX_RETRIES}"
    assert current.model_copy(update={"event_id": event.event_id}) == event  # same content
    first = _retry_of(event)
    assert first is not None
    assert first == _retry_of(event)  # a redelivered event retries under the same id
