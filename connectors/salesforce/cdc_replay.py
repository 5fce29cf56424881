"""Where a change event stream resumes: a replay position per transport, stored as JSON.

Salesforce keeps change events 72 hours and gives each an opaque replay id; a subscriber
stores the id of the last event it handled and resubscribes after it ("Event Message
Durability", Pub/Sub API Developer Guide,
https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-message-durability.html:
"Subscribers must not compute new Replay IDs based on a stored Replay ID"). The two APIs
spell it differently: the Streaming API (CometD) sends an integer ``replayId``, the Pub/Sub
API opaque ``bytes``. A position also names its channel, so a position stored for one
channel is never used for another, and carries the commit time of the event it follows: when
the position has expired, that time bounds what must be read again.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.errors import ConfigurationError

__all__ = ["CometdReplay", "PubSubReplay", "ReplayPosition", "replay_position_from_json"]


def _time_to_json(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class CometdReplay:
    """After the Streaming API event with this ``replayId`` on ``channel``."""

    channel: str
    replay_id: int
    #: commitTimestamp of that event (None when unknown)
    at: datetime | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "transport": "cometd",
                "channel": self.channel,
                "replay_id": self.replay_id,
                "at": _time_to_json(self.at),
            },
            sort_keys=True,
        )


@dataclass(frozen=True, slots=True)
class PubSubReplay:
    """After the Pub/Sub API event with this ``replay_id`` on ``channel`` (the topic name)."""

    channel: str
    replay_id: bytes
    #: commitTimestamp of the last event at or before this position (None when unknown)
    at: datetime | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "transport": "pubsub",
                "channel": self.channel,
                "replay_id": base64.b64encode(self.replay_id).decode(),
                "at": _time_to_json(self.at),
            },
            sort_keys=True,
        )


ReplayPosition = CometdReplay | PubSubReplay


def replay_position_from_json(text: str | bytes) -> ReplayPosition:
    """The position :meth:`to_json` wrote; ConfigurationError when it is not one."""
    try:
        body: Any = json.loads(text)
        channel = body["channel"]
        raw_at = body.get("at")
        at = None if raw_at is None else datetime.fromisoformat(raw_at)
        if not isinstance(channel, str):
            raise TypeError("channel is not a string")
        if body["transport"] == "cometd":
            replay_id = body["replay_id"]
            if not isinstance(replay_id, int) or isinstance(replay_id, bool):
                raise TypeError("replay_id is not an integer")
            return CometdReplay(channel, replay_id, at)
        if body["transport"] == "pubsub":
            raw = base64.b64decode(body["replay_id"], validate=True)
            return PubSubReplay(channel, raw, at)
        raise ValueError(f"unknown transport {body['transport']!r}")
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ConfigurationError(
            f"a stored Salesforce replay position is unreadable ({exc}); delete it so the "
            "subscriber starts from new events, then backfill the records changed meanwhile"
        ) from exc
