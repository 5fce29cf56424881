"""Switchboards, switchboard integrations and the four switchboard actions.

* ``GET /switchboards``, ``PATCH /switchboards/{switchboardId}``;
* ``GET|POST /switchboards/{switchboardId}/switchboardIntegrations``,
  ``PATCH .../switchboardIntegrations/{switchboardIntegrationId}``;
* ``POST /conversations/{conversationId}/passControl|offerControl|acceptControl|releaseControl``
  → 200 ``{}``; a body is required except for releaseControl (spec ``requestBody.required``
  of each operation); what each action does is in :mod:`.switchboard`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from sandboxes.zendesk_conversations import switchboard as actions
from sandboxes.zendesk_conversations import validation
from sandboxes.zendesk_conversations.errors import SunshineAPIError, bad_request
from sandboxes.zendesk_conversations.http import (
    Api,
    caller_integration,
    json_response,
    read_json,
    routes_for,
)
from sandboxes.zendesk_conversations.model import (
    Conversation,
    Switchboard,
    SwitchboardIntegration,
)
from sandboxes.zendesk_conversations.render import (
    switchboard_integration_json,
    switchboard_json,
)

__all__ = ["SwitchboardRoutes"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MAX_INTEGRATIONS: Final = 10


def _target(body: dict[str, Any]) -> str:
    target = body.get("switchboardIntegration")
    if not isinstance(target, str) or not target:
        raise bad_request("switchboardIntegration is required")
    return target


def _integration_fields(
    switchboard: Switchboard, body: dict[str, Any], *, creating: bool
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "name" in body or creating:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise bad_request("name is required: 1 to 128 alphanumeric characters, - or _")
        fields["name"] = name
    has_id, has_type = (
        body.get("integrationId") is not None,
        body.get("integrationType") is not None,
    )
    if has_id and has_type:
        raise bad_request("Provide one of integrationId or integrationType, not both")
    if creating and not (has_id or has_type):
        raise bad_request("One of integrationId or integrationType is required")
    for name in ("integrationId", "integrationType"):
        if body.get(name) is not None:
            fields[name] = validation.optional_str(body, name, max_length=128)
    if "deliverStandbyEvents" in body:
        if not isinstance(body["deliverStandbyEvents"], bool):
            raise bad_request("deliverStandbyEvents must be a boolean")
        fields["deliverStandbyEvents"] = body["deliverStandbyEvents"]
    if "nextSwitchboardIntegrationId" in body:
        next_id = body["nextSwitchboardIntegrationId"]
        if next_id is not None and next_id not in switchboard.integrations:
            raise bad_request(
                "nextSwitchboardIntegrationId does not name a switchboard integration"
            )
        fields["nextSwitchboardIntegrationId"] = next_id
    if "messageHistoryCount" in body:
        count = body["messageHistoryCount"]
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10
        ):
            raise bad_request("messageHistoryCount must be an integer from 1 to 10")
        fields["messageHistoryCount"] = count
    return fields


def _apply(sbi: SwitchboardIntegration, fields: dict[str, Any]) -> None:
    for name, attribute in (
        ("name", "name"),
        ("deliverStandbyEvents", "deliver_standby_events"),
        ("nextSwitchboardIntegrationId", "next_id"),
        ("messageHistoryCount", "message_history_count"),
    ):
        if name in fields:
            setattr(sbi, attribute, fields[name])
    if "integrationId" in fields:
        sbi.integration_id = fields["integrationId"]
        sbi.integration_type = "custom"
    if "integrationType" in fields:
        sbi.integration_type = fields["integrationType"]
        sbi.integration_id = fields["integrationType"]


@dataclass(frozen=True, slots=True)
class _Call:
    conversation: Conversation
    body: dict[str, Any]
    metadata: dict[str, Any] | None
    caller: str | None


class SwitchboardRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[web.RouteDef]:
        board = "/switchboards/{switchboardId}"
        sbis = f"{board}/switchboardIntegrations"
        conversation = "/conversations/{conversationId}"
        return [
            *routes_for("GET", "/switchboards", self.list_switchboards),
            *routes_for("PATCH", board, self.update_switchboard),
            *routes_for("GET", sbis, self.list_integrations),
            *routes_for("POST", sbis, self.create_integration),
            *routes_for("PATCH", f"{sbis}/{{switchboardIntegrationId}}", self.update_integration),
            *routes_for("POST", f"{conversation}/passControl", self.pass_control),
            *routes_for("POST", f"{conversation}/offerControl", self.offer_control),
            *routes_for("POST", f"{conversation}/acceptControl", self.accept_control),
            *routes_for("POST", f"{conversation}/releaseControl", self.release_control),
        ]

    def _switchboard(self, request: web.Request) -> Switchboard:
        switchboard = self.api.state.switchboard
        if request.match_info["switchboardId"] != switchboard.id:
            raise SunshineAPIError(404, "switchboard_not_found", "Switchboard not found")
        return switchboard

    async def list_switchboards(self, request: web.Request) -> web.Response:
        return json_response({"switchboards": [switchboard_json(self.api.state.switchboard)]})

    async def update_switchboard(self, request: web.Request) -> web.Response:
        switchboard = self._switchboard(request)
        body = validation.require_object(await read_json(request))
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise bad_request("enabled must be a boolean")
            switchboard.enabled = body["enabled"]
        if "defaultSwitchboardIntegrationId" in body:
            default = body["defaultSwitchboardIntegrationId"]
            if default not in switchboard.integrations:
                raise bad_request(
                    "defaultSwitchboardIntegrationId does not name a switchboard integration"
                )
            switchboard.default_id = default
        return json_response({"switchboard": switchboard_json(switchboard)})

    async def list_integrations(self, request: web.Request) -> web.Response:
        switchboard = self._switchboard(request)
        return json_response(
            {
                "switchboardIntegrations": [
                    switchboard_integration_json(s) for s in switchboard.integrations.values()
                ]
            }
        )

    async def create_integration(self, request: web.Request) -> web.Response:
        switchboard = self._switchboard(request)
        body = validation.require_object(await read_json(request))
        if len(switchboard.integrations) >= _MAX_INTEGRATIONS:
            raise SunshineAPIError(
                400,
                "too_many_switchboard_integrations",
                "Switchboard has reached the max number of switchboard integrations (10)",
            )
        fields = _integration_fields(switchboard, body, creating=True)
        if any(s.name == fields["name"] for s in switchboard.integrations.values()):
            raise bad_request(f"A switchboard integration named {fields['name']} already exists")
        sbi = SwitchboardIntegration(
            id=self.api.state.ids.new(), name=fields["name"], integration_id="", integration_type=""
        )
        _apply(sbi, fields)
        switchboard.integrations[sbi.id] = sbi
        return json_response(
            {"switchboardIntegration": switchboard_integration_json(sbi)}, status=201
        )

    async def update_integration(self, request: web.Request) -> web.Response:
        switchboard = self._switchboard(request)
        sbi = switchboard.find(request.match_info["switchboardIntegrationId"])
        if sbi is None:
            raise SunshineAPIError(
                404, "switchboard_integration_not_found", "SwitchboardIntegration not found"
            )
        body = validation.require_object(await read_json(request))
        _apply(sbi, _integration_fields(switchboard, body, creating=False))
        return json_response({"switchboardIntegration": switchboard_integration_json(sbi)})

    # -- actions -------------------------------------------------------------------------

    async def _action(self, request: web.Request, *, required: bool) -> _Call:
        """What every control action reads: its conversation (404 first), body, metadata and
        the integration making the call."""
        conversation = self.api.state.get_conversation(request.match_info["conversationId"])
        raw = await read_json(request, required=required)
        body = {} if raw is None else validation.require_object(raw)
        return _Call(
            conversation=conversation,
            body=body,
            metadata=validation.metadata(body.get("metadata")),
            caller=caller_integration(request),
        )

    async def pass_control(self, request: web.Request) -> web.Response:
        call = await self._action(request, required=True)
        target, reason = _target(call.body), validation.control_reason(call.body)
        return await self.api.act(
            lambda: actions.pass_control(
                self.api.state,
                call.conversation,
                target,
                metadata=call.metadata,
                reason=reason,
                caller_integration_id=call.caller,
            )
        )

    async def offer_control(self, request: web.Request) -> web.Response:
        call = await self._action(request, required=True)
        target = _target(call.body)
        return await self.api.act(
            lambda: actions.offer_control(
                self.api.state,
                call.conversation,
                target,
                metadata=call.metadata,
                caller_integration_id=call.caller,
            )
        )

    async def accept_control(self, request: web.Request) -> web.Response:
        # The spec marks acceptControl's body required (releaseControl's is optional).
        call = await self._action(request, required=True)
        return await self.api.act(
            lambda: actions.accept_control(
                self.api.state,
                call.conversation,
                metadata=call.metadata,
                caller_integration_id=call.caller,
            )
        )

    async def release_control(self, request: web.Request) -> web.Response:
        call = await self._action(request, required=False)
        reason = validation.control_reason(call.body)
        return await self.api.act(
            lambda: actions.release_control(
                self.api.state,
                call.conversation,
                metadata=call.metadata,
                reason=reason,
                caller_integration_id=call.caller,
            )
        )
