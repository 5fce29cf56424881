"""The records a Sunshine Conversations app holds, and how ids and timestamps look.

Ids are 24 hex characters shaped like the platform's: the spec's record ids are
``minLength: 24``/``maxLength: 24`` with examples such as ``5e1606762556d93e9c176f69``
(``components/schemas/page``, ``after``/``before``). Their inner layout (a 4-byte Unix time,
5 random bytes from the seeded generator and a 3-byte counter, as a Mongo ObjectId) is
UNVERIFIED and nothing may rely on it; receivers treat ids as opaque. Timestamps are
``YYYY-MM-DDThh:mm:ss.SSSZ``, as in the spec's examples (e.g. ``signedUpAt``, ``received``).
The record fields follow the spec's ``components/schemas`` (``user``, ``conversation``,
``message``, ``switchboard``, ``switchboardIntegration``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandboxes.base.clock import Clock

__all__ = [
    "Conversation",
    "Event",
    "IdFactory",
    "Message",
    "Switchboard",
    "SwitchboardIntegration",
    "User",
    "iso_ms",
]


def iso_ms(moment: datetime) -> str:
    """``moment`` as the platform writes datetimes: UTC with milliseconds and a ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class IdFactory:
    """ObjectId-shaped ids drawn from the sandbox's seeded generator and clock."""

    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self._rng = rng
        self._clock = clock
        self._counter = rng.getrandbits(24)

    def new(self) -> str:
        seconds = int(self._clock.now().timestamp()) & 0xFFFFFFFF
        self._counter = (self._counter + 1) & 0xFFFFFF
        return f"{seconds:08x}{self._rng.getrandbits(40):010x}{self._counter:06x}"


@dataclass
class User:
    id: str
    external_id: str | None
    signed_up_at: str
    profile: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    to_be_retained: bool | None = None


@dataclass
class Message:
    id: str
    received: str
    #: As the API returns it: ``type``, plus ``userId`` for users, ``displayName``, ...
    author: dict[str, Any]
    content: dict[str, Any]
    source: dict[str, Any]
    metadata: dict[str, Any] | None = None


@dataclass
class Conversation:
    id: str
    type: str
    created_at: str
    last_updated_at: str
    user_ids: list[str] = field(default_factory=list)
    is_default: bool = False
    display_name: str | None = None
    description: str | None = None
    icon_url: str | None = None
    metadata: dict[str, Any] | None = None
    #: Switchboard state: the integration in control and the one offered control.
    active_id: str | None = None
    pending_id: str | None = None
    messages: list[Message] = field(default_factory=list)


@dataclass
class SwitchboardIntegration:
    id: str
    name: str
    integration_id: str
    integration_type: str
    deliver_standby_events: bool = True
    next_id: str | None = None
    message_history_count: int | None = None


@dataclass
class Switchboard:
    id: str
    enabled: bool
    default_id: str | None
    integrations: dict[str, SwitchboardIntegration] = field(default_factory=dict)

    def find(self, integration_id: str | None) -> SwitchboardIntegration | None:
        return self.integrations.get(integration_id) if integration_id else None


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook event, with its id and time fixed when it happened (a redelivery carries
    the same id, which is what receivers deduplicate on)."""

    id: str
    type: str
    created_at: str
    payload: dict[str, Any]
    #: The conversation the event concerns, for the switchboard's standby delivery rule.
    conversation_id: str | None = None
