"""Switchboard actions: who is in control of a conversation.

Sources: the official OpenAPI (``sunshine-conversations-openapi.yaml``), operations
``PassControl``, ``OfferControl``, ``AcceptControl``, ``ReleaseControl`` and schemas
``components/schemas/passControlBody`` ... ``acceptControlBody``,
``components/schemas/switchboardPassControlFailure`` (and the offer/accept ones) with the
examples ``components/examples/switchboard*FailureEvent``; the Pass Control description of the
API reference as Zendesk's official client publishes it ("SwitchboardActionsApi.md",
https://github.com/zendesk/sunshine-conversations-python/blob/master/docs/SwitchboardActionsApi.md);
and the switchboard guide (https://developer.zendesk.com/documentation/conversations/
messaging-platform/programmable-conversations/switchboard/#pass-control).

* ``passControl``: the target becomes active, every other integration (the pending one too)
  goes to standby. The API reference: "The passControl action is idempotent if either the
  target switchboardIntegration is specified explicitly by its id or name, or the next keyword
  is used [...], and the invoking integration can be identified by its OAuth token or Custom
  Integration API Key credentials. Duplicate passControl actions using the next keyword and
  their metadata are disregarded." So a call made with the custom integration's own key
  resolves ``next`` from *that integration's* place in the switchboard, not from whoever holds
  control now: a retried hand-off finds its target already active and changes nothing
  (200, no webhook, metadata dropped). With an app key the invoker is unknown and ``next``
  follows the active integration, so a repeat moves control on again: the documented
  exception. Passing to the integration already in control (by id, name or type) changes
  nothing and announces nothing (UNVERIFIED for app keys: the promise above is made only for
  identified integrations).
* ``offerControl``: the target becomes pending; it may not be the active one.
* ``acceptControl``: the pending integration becomes active; with an integration key, 403
  unless the caller is the pending integration.
* ``releaseControl``: the switchboard state is nullified (no active, no pending); the next
  user message hands the conversation to the default integration. With an integration key,
  403 unless the caller is the active integration.

A pass, offer or accept that cannot be carried out (unknown or ambiguous target, no ``next``,
an offer to the active integration, an accept with nothing pending) raises
:class:`SwitchboardActionFailed` carrying the ``switchboard:<action>:failure`` event the spec
defines: ``{conversation, error: {code, message}, metadata?}`` with the codes of the spec's
examples (``switchboard_invalid_target``, ``switchboard_invalid_action``). The spec has no
``switchboard:releaseControl:failure``. Requests refused before the action runs (a malformed
body, a disabled switchboard, an unknown conversation) announce nothing.

Targets are named by switchboard integration id, name or integration type, in that order of
precedence, or ``next``. Each action's metadata (flat, at most 4 KB) rides along in its
``switchboard:*`` webhook.
"""

from __future__ import annotations

from typing import Any

from sandboxes.zendesk_conversations.errors import (
    SunshineAPIError,
    SwitchboardActionFailed,
    bad_request,
)
from sandboxes.zendesk_conversations.model import (
    Conversation,
    Event,
    Switchboard,
    SwitchboardIntegration,
)
from sandboxes.zendesk_conversations.render import conversation_truncated
from sandboxes.zendesk_conversations.state import SunshineState

__all__ = [
    "accept_control",
    "offer_control",
    "pass_control",
    "release_control",
]

_INVALID_TARGET = "switchboard_invalid_target"
_INVALID_ACTION = "switchboard_invalid_action"


class _Refusal(Exception):
    """Why an action cannot be carried out: the HTTP error and the failure event's error."""

    def __init__(self, error: SunshineAPIError, code: str, message: str) -> None:
        super().__init__(error.title)
        self.error = error
        self.code = code
        self.message = message


def _not_found() -> _Refusal:
    error = SunshineAPIError(
        404, "switchboard_integration_not_found", "SwitchboardIntegration not found"
    )
    # The spec's passControl:failure example words an unknown target this way.
    return _Refusal(error, _INVALID_TARGET, "Switchboard invalid target")


def _invalid(code: str, title: str) -> _Refusal:
    return _Refusal(bad_request(title), code, title)


def _caller(state: SunshineState, integration_id: str | None) -> SwitchboardIntegration | None:
    if integration_id is None:
        return None
    linked = state.switchboard.integrations.values()
    return next((s for s in linked if s.integration_id == integration_id), None)


def _target(
    switchboard: Switchboard,
    conversation: Conversation,
    reference: str,
    caller: SwitchboardIntegration | None = None,
) -> SwitchboardIntegration:
    integrations = switchboard.integrations
    if reference == "next":
        # An identified caller's "next" is its own successor (so a duplicate is recognised);
        # otherwise the active integration's (or the default's, after a release).
        current = caller or switchboard.find(conversation.active_id)
        current = current or switchboard.find(switchboard.default_id)
        target = switchboard.find(current.next_id) if current else None
        if target is None:
            raise _invalid(_INVALID_TARGET, "No next switchboard integration is configured")
        return target
    if reference in integrations:
        return integrations[reference]
    by_name = [s for s in integrations.values() if s.name == reference]
    if by_name:
        return by_name[0]
    by_type = [s for s in integrations.values() if s.integration_type == reference]
    if len(by_type) > 1:
        raise _invalid(
            _INVALID_TARGET,
            f"Ambiguous switchboardIntegration {reference!r}: several switchboard "
            "integrations have this integration type",
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


def _failed(
    state: SunshineState,
    action: str,
    conversation: Conversation,
    refusal: _Refusal,
    metadata: dict[str, Any] | None,
) -> SwitchboardActionFailed:
    """``components/schemas/switchboard<Action>Failure``: the conversation as it stays, what
    went wrong and the action's metadata."""
    payload = _payload(state, conversation, metadata)
    payload["error"] = {"code": refusal.code, "message": refusal.message}
    failure = state.event(f"switchboard:{action}:failure", payload, conversation)
    error = refusal.error
    return SwitchboardActionFailed(error.status, error.code, error.title, failure)


def _forbidden() -> SunshineAPIError:
    return SunshineAPIError(403, "forbidden", "Forbidden")


def _resolved_target(
    state: SunshineState,
    action: str,
    conversation: Conversation,
    reference: str,
    metadata: dict[str, Any] | None,
    caller_integration_id: str | None,
    *,
    refuse_active: str | None = None,
) -> SwitchboardIntegration:
    """The integration ``reference`` names for ``action``; a refusal is announced as the
    action's failure webhook. ``refuse_active``: the active integration is refused, so."""
    switchboard = state.switchboard
    _require_enabled(switchboard)
    caller = _caller(state, caller_integration_id)
    try:
        target = _target(switchboard, conversation, reference, caller)
        if refuse_active is not None and target.id == conversation.active_id:
            raise _invalid(_INVALID_TARGET, refuse_active)
    except _Refusal as refusal:
        raise _failed(state, action, conversation, refusal, metadata) from None
    return target


def _require_caller(
    state: SunshineState, caller_integration_id: str | None, holder_id: str | None
) -> None:
    """An identified integration may act only as the one the action belongs to (403)."""
    if caller_integration_id is None:
        return
    caller = _caller(state, caller_integration_id)
    if caller is None or caller.id != holder_id:
        raise _forbidden()


def pass_control(
    state: SunshineState,
    conversation: Conversation,
    reference: str,
    *,
    metadata: dict[str, Any] | None,
    reason: str | None = None,
    caller_integration_id: str | None = None,
) -> list[Event]:
    target = _resolved_target(
        state, "passControl", conversation, reference, metadata, caller_integration_id
    )
    if conversation.active_id == target.id and conversation.pending_id is None:
        return []  # already there: a duplicate, disregarded with its metadata
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
    caller_integration_id: str | None = None,
) -> list[Event]:
    target = _resolved_target(
        state,
        "offerControl",
        conversation,
        reference,
        metadata,
        caller_integration_id,
        # Worded as the spec's offerControl:failure example.
        refuse_active="Cannot offer control to the active switchboard integration.",
    )
    conversation.pending_id = target.id  # a new offer replaces any previous one
    payload = _payload(state, conversation, metadata)
    return [state.event("switchboard:offerControl", payload, conversation)]


def accept_control(
    state: SunshineState,
    conversation: Conversation,
    *,
    metadata: dict[str, Any] | None,
    caller_integration_id: str | None = None,
) -> list[Event]:
    _require_enabled(state.switchboard)
    if conversation.pending_id is None:
        # Worded as the spec's acceptControl:failure example.
        refusal = _invalid(_INVALID_ACTION, "There is no pendingSwitchboardIntegration")
        raise _failed(state, "acceptControl", conversation, refusal, metadata)
    _require_caller(state, caller_integration_id, conversation.pending_id)
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
    caller_integration_id: str | None = None,
) -> list[Event]:
    _require_enabled(state.switchboard)
    _require_caller(state, caller_integration_id, conversation.active_id)
    if conversation.active_id is None and conversation.pending_id is None:
        return []  # already released: nothing changes, nothing to announce
    conversation.active_id = None
    conversation.pending_id = None
    payload = _payload(state, conversation, metadata, reason)
    return [state.event("switchboard:releaseControl", payload, conversation)]
