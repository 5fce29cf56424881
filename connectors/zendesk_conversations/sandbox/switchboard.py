"""Switchboard actions: who is in control of a conversation.

* ``passControl``: the target becomes active, every other integration (the pending one too)
  goes to standby. Passing to the integration already in control changes nothing and is
  not announced again (the platform documents passControl as idempotent).
* ``offerControl``: the target becomes pending; it may not be the active one.
* ``acceptControl``: the pending integration becomes active.
* ``releaseControl``: the switchboard state is nullified (no active, no pending); the next
  user message hands the conversation to the default integration.

Targets are named by switchboard integration id, name or integration type, in that order of
precedence, or ``next`` (the active integration's ``nextSwitchboardIntegrationId``). Each
action's metadata (flat, at most 4 KB) rides along in its ``switchboard:*`` webhook.
"""

from __future__ import annotations

from typing import Any

from connectors.zendesk_conversations.sandbox.errors import SunshineAPIError, bad_request
from connectors.zendesk_conversations.sandbox.model import (
    Conversation,
    Event,
    Switchboard,
    SwitchboardIntegration,
)
from connectors.zendesk_conversations.sandbox.render import conversation_truncated
from connectors.zendesk_conversations.sandbox.state import SunshineState

__all__ = [
    "accept_control",
    "offer_control",
    "pass_control",
    "release_control",
    "resolve_target",
]


def _not_found() -> SunshineAPIError:
    return SunshineAPIError(
        404, "switchboard_integration_not_found", "SwitchboardIntegration not found"
    )


def resolve_target(
    switchboard: Switchboard, conversation: Conversation, reference: str
) -> SwitchboardIntegration:
    """The switchboard integration ``reference`` designates for ``conversation``."""
    integrations = switchboard.integrations
    if reference == "next":
        current = switchboard.find(conversation.active_id) or switchboard.find(
            switchboard.default_id
        )
        target = switchboard.find(current.next_id) if current else None
        if target is None:
            raise bad_request("No next switchboard integration is configured")
        return target
    if reference in integrations:
        return integrations[reference]
    by_name = [s for s in integrations.values() if s.name == reference]
    if by_name:
        return by_name[0]
    by_type = [s for s in integrations.values() if s.integration_type == reference]
    if len(by_type) > 1:
        raise bad_request(
            f"Ambiguous switchboardIntegration {reference!r}: several switchboard "
            "integrations have this integration type"
        )
    if not by_type:
        raise _not_found()
    return by_type[0]


def _require_enabled(switchboard: Switchboard) -> None:
    if not switchboard.enabled:
        raise bad_request("The switchboard is disabled")


def _payload(
    state: SunshineState,
    conversation: Conversation,
    metadata: dict[str, Any] | None,
    reason: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "conversation": conversation_truncated(conversation, state.switchboard)
    }
    if metadata:
        payload["metadata"] = metadata
    if reason is not None:
        payload["reason"] = reason
    return payload


def pass_control(
    state: SunshineState,
    conversation: Conversation,
    reference: str,
    *,
    metadata: dict[str, Any] | None,
    reason: str | None = None,
) -> list[Event]:
    switchboard = state.switchboard
    _require_enabled(switchboard)
    target = resolve_target(switchboard, conversation, reference)
    if conversation.active_id == target.id and conversation.pending_id is None:
        return []
    conversation.active_id = target.id
    conversation.pending_id = None
    payload = _payload(state, conversation, metadata, reason)
    return [state.event("switchboard:passControl", payload, conversation)]


def offer_control(
    state: SunshineState,
    conversation: Conversation,
    reference: str,
    *,
    metadata: dict[str, Any] | None,
) -> list[Event]:
    switchboard = state.switchboard
    _require_enabled(switchboard)
    target = resolve_target(switchboard, conversation, reference)
    if target.id == conversation.active_id:
        raise bad_request("Cannot offer control to the active switchboard integration.")
    conversation.pending_id = target.id  # a new offer replaces any previous one
    payload = _payload(state, conversation, metadata)
    return [state.event("switchboard:offerControl", payload, conversation)]


def accept_control(
    state: SunshineState, conversation: Conversation, *, metadata: dict[str, Any] | None
) -> list[Event]:
    _require_enabled(state.switchboard)
    if conversation.pending_id is None:
        raise bad_request("There is no pendingSwitchboardIntegration")
    conversation.active_id = conversation.pending_id
    conversation.pending_id = None
    payload = _payload(state, conversation, metadata)
    return [state.event("switchboard:acceptControl", payload, conversation)]


def release_control(
    state: SunshineState,
    conversation: Conversation,
    *,
    metadata: dict[str, Any] | None,
    reason: str | None = None,
) -> list[Event]:
    _require_enabled(state.switchboard)
    if conversation.active_id is None and conversation.pending_id is None:
        return []  # already released: nothing changes, nothing to announce
    conversation.active_id = None
    conversation.pending_id = None
    payload = _payload(state, conversation, metadata, reason)
    return [state.event("switchboard:releaseControl", payload, conversation)]
