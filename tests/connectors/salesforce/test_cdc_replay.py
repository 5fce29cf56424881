"""Replay positions survive their JSON form; unreadable ones say what to do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.salesforce.cdc_replay import (
    CometdReplay,
    PubSubReplay,
    ReplayPosition,
    replay_position_from_json,
)
from connectors.salesforce.cdc_stream import channel_entity
from schemas.errors import ConfigurationError

AT = datetime(2025, 3, 1, 9, 0, 1, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    "position",
    [
        CometdReplay("/data/CaseChangeEvent", 4_211_907, AT),
        CometdReplay("/data/ChangeEvents", 17, None),
        PubSubReplay("/data/CaseChangeEvent", b"\x00\x00\x00\x00\x00\x40\x44\x03", AT),
        PubSubReplay("/data/ContactChangeEvent", bytes(range(256)), None),
    ],
    ids=["cometd", "cometd-no-time", "pubsub", "pubsub-any-bytes"],
)
def test_positions_round_trip_through_json(position: ReplayPosition) -> None:
    assert replay_position_from_json(position.to_json()) == position
    assert replay_position_from_json(position.to_json().encode()) == position


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"transport": "cometd", "channel": "/data/CaseChangeEvent", "replay_id": "12"}',
        '{"transport": "cometd", "channel": "/data/CaseChangeEvent", "replay_id": true}',
        '{"transport": "pubsub", "channel": "/data/CaseChangeEvent", "replay_id": "%%"}',
        '{"transport": "kafka", "channel": "/data/CaseChangeEvent", "replay_id": 1}',
        '{"transport": "cometd", "replay_id": 1}',
    ],
    ids=["not-json", "string-id", "bool-id", "bad-base64", "unknown-transport", "no-channel"],
)
def test_unreadable_positions_are_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="delete it"):
        replay_position_from_json(text)


@pytest.mark.parametrize(
    ("channel", "entity"),
    [
        ("/data/CaseChangeEvent", "Case"),
        ("/data/Ticket__ChangeEvent", "Ticket__c"),
        ("/data/ChangeEvents", None),
        ("/data/Support__chn", None),
    ],
)
def test_channel_entity(channel: str, entity: str | None) -> None:
    assert channel_entity(channel) == entity
