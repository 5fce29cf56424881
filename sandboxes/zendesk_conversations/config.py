"""What the Zendesk Conversations sandbox is seeded with, and the platform's fixed limits.

Sources: the official OpenAPI document (``sunshine-conversations-openapi.yaml``), tag
``Webhooks`` ("Webhook Triggers", "Retry policy", "Non-recoverable Errors") for the triggers
and :data:`SUNSHINE_RETRY_POLICY`; ``x-webhooks/Webhook Event`` for the ``events`` array that
:attr:`SunshineSandboxConfig.webhook_batch_window_s` and ``webhook_batch_max_events`` fill.

The defaults are fixed, documented values (not drawn from the seed) so a demo or a worker
configuration can name the app id, the API key and the webhook secret without asking the
sandbox first. Ids follow the platform's formats: 24 hex characters for apps, integrations,
switchboards and webhooks, ``app_`` + 24 hex for an app-scoped API key id.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from sandboxes.base.webhooks import RetryPolicy

__all__ = [
    "AGENT_WORKSPACE_TYPE",
    "DEFAULT_BATCH_MAX_EVENTS",
    "DEFAULT_BATCH_WINDOW_S",
    "DEFAULT_TRIGGERS",
    "JSON_BODY_LIMIT",
    "MESSAGES_PAGE_SIZE",
    "METADATA_LIMIT_BYTES",
    "SUNSHINE_RETRY_POLICY",
    "SunshineSandboxConfig",
]

#: The integration type Zendesk's agent workspace has in a switchboard.
AGENT_WORKSPACE_TYPE: Final = "zd:agentWorkspace"

#: Metadata objects (users, conversations, messages, switchboard actions) are capped at 4 KB.
METADATA_LIMIT_BYTES: Final = 4096

#: JSON request bodies over 100 kB are refused.
JSON_BODY_LIMIT: Final = 100 * 1024

#: List Messages pages backwards with a fixed page size.
MESSAGES_PAGE_SIZE: Final = 100

#: The triggers the sandbox emits; the seeded webhook subscribes to all of them.
DEFAULT_TRIGGERS: Final[tuple[str, ...]] = (
    "conversation:create",
    "conversation:message",
    "switchboard:passControl",
    "switchboard:offerControl",
    "switchboard:acceptControl",
    "switchboard:releaseControl",
    # The spec's trigger table has failure triggers for three actions (none for release).
    "switchboard:passControl:failure",
    "switchboard:offerControl:failure",
    "switchboard:acceptControl:failure",
)

#: UNVERIFIED: no official page says how long Sunshine holds events to share a payload or how
#: many one payload carries; the spec only says a payload "contains an array of events, which
#: may or may not originate from the same user or conversation" (``x-webhooks/Webhook Event``).
#: Small values keep the hold short; both are configurable per sandbox.
DEFAULT_BATCH_WINDOW_S: Final = 0.2
DEFAULT_BATCH_MAX_EVENTS: Final = 10

#: Sunshine's documented webhook retry policy: up to 5 attempts over a 15 minute window at an
#: exponentially growing interval (60 + 120 + 240 + 480 s = 15 min), a 20 s timeout counts as a
#: failure, and 400/401/403/404/406 are non-recoverable (never retried).
SUNSHINE_RETRY_POLICY: Final = RetryPolicy(
    max_attempts=5,
    retry_statuses=None,
    never_retry_statuses=frozenset({400, 401, 403, 404, 406}),
    retry_on_transport_error=True,
    backoff_initial_s=60.0,
    backoff_factor=2.0,
    backoff_max_s=480.0,
    timeout_s=20.0,
)


class SunshineSandboxConfig(BaseModel):
    """The app the sandbox emulates: credentials, the custom integration and its webhook, and
    the switchboard an AI agent shares with the Zendesk agent workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = "5f0c9a1e3b2d4c0012ab34cd"
    key_id: str = "app_5f0c9a1e3b2d4c0012ab3501"
    key_secret: str = "sandbox-secret-0123456789abcdefghijklmnop"  # noqa: S105 - sandbox value
    #: A Custom Integration API Key of the custom integration below: calls made with it are
    #: made *by* that integration, which is what makes passControl idempotent and what the
    #: acceptControl/releaseControl 403s are checked against (spec: ``PassControl``,
    #: ``AcceptControl``, ``ReleaseControl``; tag ``CustomIntegrationApiKeys``).
    integration_key_id: str = "int_5f0c9a1e3b2d4c0012ab3502"
    integration_key_secret: str = "sandbox-integration-secret-0123456789abcdef"  # noqa: S105

    #: The custom integration the AI agent (Deskstream) uses, and its one webhook.
    integration_id: str = "5f0c9a1e3b2d4c0012ab3601"
    integration_name: str = "Deskstream AI agent"
    webhook_id: str = "5f0c9a1e3b2d4c0012ab3701"
    webhook_secret: str = "8564b3e6a8b20a4bdb68b05ce9bc5936"  # noqa: S105 - sandbox value
    webhook_triggers: tuple[str, ...] = DEFAULT_TRIGGERS
    #: Zendesk's agent workspace, linked to the switchboard like any integration.
    agent_workspace_integration_id: str = "5f0c9a1e3b2d4c0012ab3602"
    #: The Web Widget channel end users write from (used by the end-user sandbox API).
    web_integration_id: str = "5f0c9a1e3b2d4c0012ab3603"

    switchboard_id: str = "5f0c9a1e3b2d4c0012ab3801"
    switchboard_enabled: bool = True
    ai_switchboard_integration_id: str = "5f0c9a1e3b2d4c0012ab3901"
    ai_switchboard_integration_name: str = "ai-agent"
    #: The AI agent must hear the human agent's replies while it is on standby.
    ai_deliver_standby_events: bool = True
    agent_workspace_switchboard_integration_id: str = "5f0c9a1e3b2d4c0012ab3902"
    agent_workspace_switchboard_integration_name: str = "zd-agentWorkspace"

    #: Conversations hold at most this many messages; then posting answers 423.
    max_messages_per_conversation: int = Field(30_000, ge=1)
    #: Whether 429s carry ``Retry-After``; Sunshine documents none (back off exponentially).
    send_retry_after: bool = False

    #: Events heard within this many seconds (event-loop time, not the sandbox clock: the hold
    #: is delivery latency and must not move a test's manual clock) share one payload.
    #: ``0`` sends each publishing call's events at once; ``None`` holds them until the batch
    #: is full or :meth:`WebhookPublisher.flush` runs (deterministic batches for tests).
    webhook_batch_window_s: float | None = Field(DEFAULT_BATCH_WINDOW_S, ge=0)
    #: A payload carries at most this many events; a full batch is sent at once.
    webhook_batch_max_events: int = Field(DEFAULT_BATCH_MAX_EVENTS, ge=1)
    #: UNVERIFIED: the spec lists only 200 and 404 for the switchboard actions, yet its
    #: ``*:failure`` webhooks carry the action's metadata, so a failed action is announced by
    #: webhook. Whether the call itself also answers an error is undocumented: ``True``
    #: answers the 4xx as well (the default, so a caller notices); ``False`` answers 200 and
    #: leaves the failure webhook as the only signal (the harsher reading, for tests).
    switchboard_failure_http_error: bool = True
