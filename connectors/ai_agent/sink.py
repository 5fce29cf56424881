"""The AI side's sink: a follow-up command (``handoff/handoff``) as a callback to the client.

The command itself is the Kafka event (``deskstream.commands.ai_agent``, keyed by the record);
this sink also POSTs it to the client's callback URL (the connector's ``api_base_url``) as
JSON, signed like the generic webhooks (``X-Deskstream-Signature: sha256=<hex>`` over
``"<timestamp>." + body`` with the client's newest key, ``X-Deskstream-Timestamp``), with an
``Idempotency-Key``: a retry after a lost answer is the same request, for the client to drop.
A client without a callback URL reads the topic only: the command is answered, not written.

| command          | API calls                                   |
|------------------|---------------------------------------------|
| handoff/handoff  | 1 ``POST <callback URL>``; 0 without a URL  |
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

import httpx

from connectors.base.http import ApiClient, redact, retry_after_seconds
from connectors.base.ratelimit import RateBudget, RateHeaders
from connectors.base.settings import ConnectorSettings
from connectors.base.sink import Sink, SinkResult, command_data
from connectors.generic.ingest import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from schemas.errors import FatalAPIError, RateLimitedError, RetriableAPIError
from schemas.models import CommandAction, EntityType, Handoff, SyncCommand

__all__ = ["AiAgentSink", "callback_body"]

#: a client's callback endpoint is ours to call gently: a follow-up is rare
_CALLS_PER_MINUTE = 120


def _classify(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    what = f"the AI client's callback answered {status}"
    if status == 429:
        wait = retry_after_seconds(response, default=30.0)
        raise RateLimitedError(f"{what}; waiting {wait:.0f} s", retry_after=wait)
    if status >= 500 or status == 408:
        raise RetriableAPIError(f"{what}; will retry", status=status)
    raise FatalAPIError(
        redact(f"{what} ({response.text[:200]}); check the callback URL and its key"),
        status=status,
    )


def callback_body(command: SyncCommand, handoff: Handoff) -> dict[str, Any]:
    """What the client receives: the follow-up, by the ids it knows."""
    return {
        "event": handoff.metadata.get("event", "follow_up"),
        "conversation_id": handoff.case_id,
        "platform": handoff.metadata.get("platform", ""),
        "record": handoff.metadata.get("record", ""),
        "message": handoff.summary or "",
        "command_id": command.command_id,
    }


class AiAgentSink(Sink):
    platform: ClassVar[str] = "ai_agent"

    def __init__(
        self,
        *,
        connector_id: str,
        settings: ConnectorSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._settings = settings
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        client = ApiClient(
            self._http,
            platform="ai_agent",
            budget=RateBudget(settings.rate_limit_per_minute or _CALLS_PER_MINUTE, 60.0),
            classify=_classify,
            rate_headers=lambda _response: RateHeaders(),
        )
        super().__init__(connector_id=connector_id, client=client)

    async def write(self, command: SyncCommand) -> SinkResult:
        kind, action = command.target.entity_type, command.action
        if (kind, action) != (EntityType.HANDOFF, CommandAction.HANDOFF):
            raise FatalAPIError(
                f"the AI side's sink executes handoff/handoff only, not {kind.value}/"
                f"{action.value}; the planner routed a command here by mistake"
            )
        handoff = command_data(command, Handoff)
        url = self._settings.api_base_url
        if not url:
            return SinkResult(
                None, None, 0, written=False, detail="no callback URL: the topic carries it"
            )
        body = json.dumps(callback_body(command, handoff)).encode()
        keys = self._settings.signing_secrets()
        if not keys:
            raise FatalAPIError(
                f"client {self.connector_id!r} has no key to sign its callback with; set "
                f"DESKSTREAM_CONNECTORS__{self.connector_id}__SECRET_FILE"
            )
        at = int(time.time())
        headers = {
            "content-type": "application/json",
            "Idempotency-Key": command.idempotency_key,
            DELIVERY_HEADER: command.command_id,
            TIMESTAMP_HEADER: str(at),
            SIGNATURE_HEADER: sign(keys[0].get_secret_value(), at, body),
        }
        response = await self.client.request("POST", url, content=body, headers=headers)
        detail = f"follow-up for conversation {handoff.case_id} sent to the client's callback"
        return SinkResult(handoff.case_id, response.status_code, 0, detail=detail)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
